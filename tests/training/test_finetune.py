"""Pretrained weights (init.from), frozen layers (trainable: false) and fine-tuning."""

from __future__ import annotations

import importlib
import json
import re

import numpy as np
import onnx
import pytest
from conftest import ROOT
from onnx import numpy_helper

import nnspec
from nnspec import cli, pipeline
from nnspec.data.core import load_builtin
from nnspec.errors import SpecError


def initializers(path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """specs/digits.yaml trained once (64-64-10 MLP), exported."""
    path = tmp_path_factory.mktemp("pretrained") / "digits.onnx"
    network = nnspec.train(nnspec.load_spec(ROOT / "specs" / "digits.yaml")).network
    nnspec.export(network, path)
    return path


def subset_npz(tmp_path, classes=(0, 1, 2, 3, 4)):
    """The digits of some classes only, as a new task for a new head."""
    d = load_builtin("digits", task="classification")
    keep = np.isin(d.y, classes)
    path = tmp_path / "subset.npz"
    np.savez(path, x=d.x[keep], y=d.y[keep])
    return path


def finetune_spec(tmp_path, model, head_units=5, extra_layers="", frozen="false", init=""):
    text = (
        "spec_version: 1\n"
        "name: digits-finetune\n"
        "task: classification\n"
        f"init: {{from: {model}{init}}}\n"
        "data: {npz: subset.npz, test_fraction: 0.25}\n"
        "layers:\n"
        f"  - {{kind: dense, units: 64, activation: relu, trainable: {frozen}}}\n"
        f"{extra_layers}"
        f"  - {{kind: dense, units: {head_units}, activation: softmax}}\n"
        "loss: cross_entropy\n"
        "train: {optimizer: {kind: adam, lr: 0.01}, epochs: 15, seed: 1}\n"
    )
    path = tmp_path / "finetune.yaml"
    path.write_text(text)
    return nnspec.load_spec(path)


def test_finetune_new_head_on_frozen_pretrained_layer(tmp_path, digits_model):
    subset_npz(tmp_path)
    spec = finetune_spec(tmp_path, digits_model)
    pretrained = initializers(digits_model)
    result = pipeline.train(spec)
    report, network = result.init, result.network
    assert report.loaded == ["dense_0"]
    assert list(report.fresh) == ["dense_1"]
    assert "dense_1.weight is 64×10 in the model, 64×5 here" in report.fresh["dense_1"]
    assert report.frozen == ["dense_0"]
    assert report.preprocess_loaded
    params = network.parameters()
    # The frozen layer is bit-identical to the pretrained one, after 15 epochs of training.
    np.testing.assert_array_equal(params["dense_0.weight"], pretrained["dense_0.weight"])
    np.testing.assert_array_equal(params["dense_0.bias"], pretrained["dense_0.bias"])
    np.testing.assert_array_equal(network.x_mean, pretrained["preprocess.mean"])
    # The new head learned: pretrained features separate five digits almost perfectly.
    assert params["dense_1.weight"].shape == (64, 5)
    assert result.metrics["accuracy"] >= 0.95, result.metrics
    # The exported fine-tuned model carries the same frozen weights.
    model = nnspec.export(network, tmp_path / "ft.onnx")
    assert model.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 5
    exported = initializers(tmp_path / "ft.onnx")
    np.testing.assert_array_equal(exported["dense_0.weight"], pretrained["dense_0.weight"])


def test_unfrozen_layers_load_then_move(tmp_path, digits_model):
    subset_npz(tmp_path)
    spec = finetune_spec(tmp_path, digits_model, frozen="true", init=", preprocess: refit")
    pretrained = initializers(digits_model)
    network = nnspec.build_network(spec)
    np.testing.assert_array_equal(
        network.parameters()["dense_0.weight"], pretrained["dense_0.weight"]
    )
    result = pipeline.train(spec)
    assert result.init.frozen == []
    assert result.init.preprocess == "fitted on the training data"
    assert not np.array_equal(
        result.network.parameters()["dense_0.weight"], pretrained["dense_0.weight"]
    )


def test_same_shapes_load_everything_and_reproduce_the_model(tmp_path, digits_model):
    """A spec of the same layers loads every weight: its network predicts as the model does."""
    subset_npz(tmp_path, classes=range(10))
    spec = finetune_spec(tmp_path, digits_model, head_units=10)
    network = nnspec.build_network(spec, dtype="float32")
    from nnspec_runtime import Model

    x = load_builtin("digits").x[:37]
    got = Model(digits_model, device="cpu").run(x)["probabilities"]
    np.testing.assert_allclose(network.predict(x)["probabilities"], got, rtol=1e-4, atol=1e-5)


def test_frozen_layer_that_was_not_loaded_is_an_error(tmp_path, digits_model):
    subset_npz(tmp_path)
    extra = "  - {kind: dense, name: extra, units: 32, activation: relu, trainable: false}\n"
    spec = finetune_spec(tmp_path, digits_model, extra_layers=extra)
    with pytest.raises(SpecError) as e:
        nnspec.build_network(spec)
    msg = str(e.value)
    assert "finetune.yaml:8:" in msg and "layers[1].trainable: is false" in msg
    assert "extra was not loaded" in msg and "random initial weights" in msg


def test_input_side_mismatch_is_located_at_the_layer(tmp_path, digits_model):
    """32 input features against the pretrained 64: not a new head, an input that differs."""
    d = load_builtin("digits")
    np.savez(tmp_path / "subset.npz", x=d.x[:, :32], y=d.y)
    spec = finetune_spec(tmp_path, digits_model, head_units=10)
    with pytest.raises(SpecError) as e:
        nnspec.build_network(spec)
    msg = str(e.value)
    assert "finetune.yaml:7:5: layers[0] (dense): cannot load dense_0.weight" in msg
    assert "input features differ (model 64, spec 32)" in msg


def test_conv_channel_mismatch_through_the_cli(tmp_path, capsys):
    base = (
        "spec_version: 1\nname: c\ntask: classification\nclasses: [a, b]\n"
        "input: {shape: [CH, 8, 8]}\n"
        "layers:\n"
        "  - {kind: conv2d, name: conv1, filters: 4, kernel_size: 3}\n"
        "  - {kind: flatten}\n"
        "  - {kind: dense, units: 2, activation: softmax}\n"
        "loss: cross_entropy\n"
    )
    (tmp_path / "one.yaml").write_text(base.replace("CH", "1"))
    assert cli.main(["compile", str(tmp_path / "one.yaml"), "-o", str(tmp_path / "one.onnx")]) == 0
    three = base.replace("CH", "3") + "init: {from: one.onnx}\n"
    (tmp_path / "three.yaml").write_text(three)
    capsys.readouterr()
    code = cli.main(["validate", str(tmp_path / "three.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"{tmp_path / 'three.yaml'}:7:5: layers[0] (conv2d): cannot load")
    assert "input channels differ (model 1, spec 3)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "value,message",
    [
        ("missing.onnx", "no such model file"),
        ("finetune.yaml", "not"),  # a YAML file is not an ONNX model
    ],
)
def test_unusable_init_file_is_located(tmp_path, value, message):
    subset_npz(tmp_path)
    spec = finetune_spec(tmp_path, value)
    with pytest.raises(SpecError) as e:
        nnspec.build_network(spec)
    assert "finetune.yaml:4:14: init.from:" in str(e.value)
    assert message in str(e.value)


def test_a_model_without_matching_layers_is_an_error(tmp_path):
    other = (ROOT / "specs" / "iris.yaml").read_text()
    other = other.replace("{kind: dense,", "{kind: dense, name: renamed,", 1)
    other = other.replace("{kind: dense, units: 3", "{kind: dense, name: out, units: 3")
    (tmp_path / "iris.yaml").write_text(other)
    assert cli.main(["compile", str(tmp_path / "iris.yaml"), "-o", str(tmp_path / "i.onnx")]) == 0
    subset_npz(tmp_path)
    spec = finetune_spec(tmp_path, "i.onnx")
    with pytest.raises(SpecError, match="no layer of i.onnx matches this spec"):
        nnspec.build_network(spec)


def test_every_layer_frozen_is_an_error(tmp_path, digits_model):
    subset_npz(tmp_path)
    text = finetune_spec(tmp_path, digits_model).source.text
    text = text.replace(
        "units: 5, activation: softmax}", "units: 5, activation: softmax, trainable: false}"
    )
    (tmp_path / "finetune.yaml").write_text(text)
    with pytest.raises(SpecError, match="every layer with weights is frozen"):
        nnspec.resolve(nnspec.load_spec(tmp_path / "finetune.yaml"))


def test_cli_train_reports_what_was_loaded(tmp_path, digits_model, capsys):
    subset_npz(tmp_path)
    finetune_spec(tmp_path, digits_model)
    out = tmp_path / "ft.onnx"
    code = cli.main(
        [
            "train",
            str(tmp_path / "finetune.yaml"),
            "-o",
            str(out),
            "--metrics",
            str(tmp_path / "m.json"),
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0
    assert f"init from {digits_model}:" in stdout
    assert "  loaded: dense_0" in stdout
    assert "  fresh:  dense_1 (dense_1.weight is 64×10 in the model, 64×5 here" in stdout
    assert "  frozen: dense_0" in stdout

    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["init"]["loaded"] == ["dense_0"] and metrics["init"]["frozen"] == ["dense_0"]


def test_frozen_batchnorm_keeps_its_statistics(tmp_path):
    """A frozen batchnorm runs as at inference: running statistics never change."""
    text = (
        "spec_version: 1\nname: bn\ntask: classification\n"
        "data: {builtin: digits}\n"
        "layers:\n"
        "  - {kind: dense, name: hidden, units: 16, activation: relu}\n"
        "  - {kind: batchnorm, name: bn, trainable: FROZEN}\n"
        "  - {kind: dense, name: out, units: 10, activation: softmax}\n"
        "loss: cross_entropy\ntrain: {epochs: 2, seed: 0}\n"
    )
    (tmp_path / "bn.yaml").write_text(text.replace("FROZEN", "true"))
    network = nnspec.train(nnspec.load_spec(tmp_path / "bn.yaml")).network
    assert not np.array_equal(network.state()["bn.running_mean"], 0)
    nnspec.export(network, tmp_path / "bn.onnx")
    frozen_text = text.replace("FROZEN", "false") + "init: {from: bn.onnx}\n"
    (tmp_path / "frozen.yaml").write_text(frozen_text.replace("seed: 0", "seed: 1"))
    frozen = nnspec.load_spec(tmp_path / "frozen.yaml")
    before = {k: v.copy() for k, v in nnspec.build_network(frozen).arrays().items()}
    for key in ("bn.scale", "bn.bias", "bn.running_mean", "bn.running_var"):
        np.testing.assert_array_equal(before[key], network.arrays()[key])
    after = nnspec.train(frozen).network.arrays()
    for key in ("bn.scale", "bn.bias", "bn.running_mean", "bn.running_var"):
        np.testing.assert_array_equal(after[key], before[key])
    assert not np.array_equal(after["hidden.weight"], before["hidden.weight"])


def test_frozen_without_init_is_an_error(tmp_path):
    text = (ROOT / "specs" / "digits.yaml").read_text()
    text = text.replace(
        "units: 64, activation: relu}", "units: 64, activation: relu, trainable: false}"
    )
    (tmp_path / "d.yaml").write_text(text)
    with pytest.raises(SpecError) as e:
        nnspec.resolve(nnspec.load_spec(tmp_path / "d.yaml"))
    assert "d.yaml:8:59: layers[0].trainable: is false, but there is no init.from" in str(e.value)


def test_validate_marks_frozen_layers_and_counts_them(tmp_path, digits_model, capsys):
    subset_npz(tmp_path)
    finetune_spec(tmp_path, digits_model)
    assert cli.main(["validate", str(tmp_path / "finetune.yaml")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^dense_0 +dense +\(batch, 64\) +4,160 +no$", out, re.M)
    assert re.search(r"^total +4,485\ntrainable +325\nfrozen +4,160$", out, re.M)
    assert "  loaded: dense_0" in out
    assert cli.main(["validate", str(tmp_path / "finetune.yaml"), "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [layer["trainable"] for layer in layers] == [False, True]


def _small_model(tmp_path, name="base", extra_text="", layers=None):
    """A small digits MLP with named layers, exported to <name>.onnx."""
    layers = layers or (
        "  - {kind: dense, name: hidden, units: 8, activation: relu}\n"
        "  - {kind: dense, name: out, units: 10, activation: softmax}\n"
    )
    text = (
        f"spec_version: 1\nname: {name}\ntask: classification\ndata: {{builtin: digits}}\n"
        f"layers:\n{layers}loss: cross_entropy\ntrain: {{epochs: 1}}\n{extra_text}"
    )
    (tmp_path / f"{name}.yaml").write_text(text)
    network = nnspec.train(nnspec.load_spec(tmp_path / f"{name}.yaml")).network
    nnspec.export(network, tmp_path / f"{name}.onnx")
    return text


def test_a_bias_the_layer_would_drop_is_not_a_load(tmp_path):
    text = _small_model(tmp_path)
    ft = text.replace("activation: relu}", "activation: relu, use_bias: false}")
    (tmp_path / "ft.yaml").write_text(ft + "init: {from: base.onnx}\n")
    report = pipeline.load_pretrained(nnspec.build_network(nnspec.load_spec(tmp_path / "ft.yaml")))
    assert report.loaded == ["out"]
    assert report.fresh == {"hidden": "the model also has hidden.bias, this layer not"}
    frozen = ft.replace("use_bias: false}", "use_bias: false, trainable: false}")
    (tmp_path / "ft.yaml").write_text(frozen + "init: {from: base.onnx}\n")
    with pytest.raises(SpecError, match="layers\\[0\\].trainable: is false, but hidden was not"):
        nnspec.build_network(nnspec.load_spec(tmp_path / "ft.yaml"))


def test_a_model_without_standardization_keeps_inputs_as_they_were(tmp_path):
    text = _small_model(tmp_path, extra_text="preprocess: {standardize: false}\n")
    ft = text.replace("preprocess: {standardize: false}\n", "")  # standardize: true here
    (tmp_path / "ft.yaml").write_text(ft + "init: {from: base.onnx}\n")
    result = pipeline.train(nnspec.load_spec(tmp_path / "ft.yaml"))
    assert result.init.preprocess == "none: the model was trained without standardization"
    np.testing.assert_array_equal(result.network.x_mean, 0)
    np.testing.assert_array_equal(result.network.x_scale, 1)


def test_regression_target_scaling_must_agree_with_a_loaded_output_layer(tmp_path):
    base = (
        "spec_version: 1\nname: mc\ntask: regression\ndata: {builtin: mcycle}\n"
        "layers:\n  - {kind: dense, name: h, units: 10, activation: tanh}\n"
        "  - {kind: dense, name: out, units: 1}\n"
        "preprocess: {standardize_target: true}\nloss: mse\ntrain: {epochs: 2}\n"
    )
    (tmp_path / "mc.yaml").write_text(base)
    network = nnspec.train(nnspec.load_spec(tmp_path / "mc.yaml")).network
    nnspec.export(network, tmp_path / "mc.onnx")
    same = base + "init: {from: mc.onnx}\n"
    (tmp_path / "ft.yaml").write_text(same)
    again = nnspec.build_network(nnspec.load_spec(tmp_path / "ft.yaml"))
    np.testing.assert_array_equal(again.y_scale, network.y_scale)
    (tmp_path / "ft.yaml").write_text(
        same.replace("standardize_target: true", "standardize_target: false")
    )
    with pytest.raises(SpecError) as e:
        nnspec.build_network(nnspec.load_spec(tmp_path / "ft.yaml"))
    assert "preprocess.standardize_target: is false, but the output layer out" in str(e.value)
    assert "trained with standardized targets" in str(e.value)


def test_missing_external_data_is_located(tmp_path, monkeypatch):
    module = importlib.import_module("nnspec.onnxio.lower")
    monkeypatch.setattr(module, "MAX_PROTOBUF", 10_000)
    text = _small_model(tmp_path)
    assert (tmp_path / "base.onnx.data").exists()
    (tmp_path / "base.onnx.data").unlink()
    (tmp_path / "ft.yaml").write_text(text + "init: {from: base.onnx}\n")
    assert cli.main(["validate", str(tmp_path / "ft.yaml")]) == 2
    with pytest.raises(
        SpecError, match="init.from: .*base.onnx: the external data file .* is missing"
    ):
        nnspec.build_network(nnspec.load_spec(tmp_path / "ft.yaml"))


def test_default_names_get_a_note(tmp_path):
    layers = (
        "  - {kind: dense, units: 8, activation: relu}\n"
        "  - {kind: dense, units: 10, activation: softmax}\n"
    )
    text = _small_model(tmp_path, layers=layers)
    (tmp_path / "ft.yaml").write_text(text + "init: {from: base.onnx}\n")
    report = pipeline.load_pretrained(nnspec.build_network(nnspec.load_spec(tmp_path / "ft.yaml")))
    assert report.loaded == ["dense_0", "dense_1"]
    assert report.notes == [
        "dense_0, dense_1 matched by default name (<kind>_<index>), which changes when a layer "
        "is inserted before it; name the layers in both specs to be sure"
    ]
