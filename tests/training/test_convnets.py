"""The shipped ConvNets end to end: LeNet trains, AlexNet compiles and runs, large models."""

from __future__ import annotations

import importlib
import json
import shutil

import numpy as np
import onnx
import pytest
from conftest import ROOT
from onnx import numpy_helper

import nnspec
from nnspec import cli, pipeline
from nnspec_runtime import Model

SPECS = ROOT / "specs"


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """specs/lenet.yaml trained through the CLI once (about 10 s on 2 cores)."""
    out = tmp_path_factory.mktemp("lenet")
    code = cli.main(
        [
            "train",
            str(SPECS / "lenet.yaml"),
            "-o",
            str(out / "lenet.onnx"),
            "--metrics",
            str(out / "m.json"),
            "-q",
        ]
    )
    assert code == 0
    return out / "lenet.onnx", json.loads((out / "m.json").read_text())


def test_lenet_reaches_its_accuracy_and_matches_onnxruntime(lenet):
    path, metrics = lenet
    assert metrics["test"]["accuracy"] >= 0.97, metrics["test"]
    assert metrics["parity"]["worst_ratio"] <= 1
    model = Model(path, device="cpu")
    assert model.input_shape == (1, 28, 28)
    digits = nnspec.data.core.load_builtin("digits28")
    # The exported model classifies the built-in digits (flat rows or images, the same).
    flat = model.predict(digits.x[:200])
    images = model.predict(digits.x[:200].reshape(-1, 1, 28, 28))
    np.testing.assert_array_equal(flat.label_indices, images.label_indices)
    assert np.mean(flat.label_indices == digits.y[:200]) > 0.95


def test_lenet_fine_tune_with_frozen_convolutions(lenet, tmp_path):
    """Frozen conv1/conv2 from the trained LeNet, a fresh head for the digits 5-9 only."""
    path, _ = lenet
    shutil.copy(path, tmp_path / "lenet.onnx")
    d = nnspec.data.core.load_builtin("digits28")
    keep = d.y >= 5
    np.savez(tmp_path / "high.npz", x=d.x[keep].reshape(-1, 28, 28), y=d.y[keep])
    text = (SPECS / "lenet.yaml").read_text()
    text = text.replace("data: {builtin: digits28, test_fraction: 0.25}", "")
    text = text.replace(
        "task: classification\n",
        "task: classification\ninit: {from: lenet.onnx}\n"
        "data: {npz: high.npz, test_fraction: 0.25}\n",
    )
    for conv in ("conv1", "conv2"):
        text = text.replace(f"name: {conv},", f"name: {conv}, trainable: false,")
    text = text.replace("units: 10, activation: softmax", "units: 5, activation: softmax")
    text = text.replace("epochs: 15", "epochs: 4")
    (tmp_path / "ft.yaml").write_text(text)
    result = pipeline.train(nnspec.load_spec(tmp_path / "ft.yaml"))
    assert result.init.loaded == ["conv1", "conv2", "fc1", "fc2"]
    assert list(result.init.fresh) == ["output"]
    assert result.init.frozen == ["conv1", "conv2"]
    pretrained = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    params = result.network.parameters()
    for key in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"):
        np.testing.assert_array_equal(params[key], pretrained[key])
    assert not np.array_equal(params["fc1.weight"], pretrained["fc1.weight"])
    assert result.metrics["accuracy"] >= 0.95, result.metrics


def test_shipped_finetune_example(lenet, tmp_path, capsys):
    """examples/lenet-finetune.yaml as its comment says to run it, next to a trained LeNet."""
    shutil.copy(lenet[0], tmp_path / "lenet.onnx")
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "lenet-finetune.yaml", tmp_path / "examples")
    out = tmp_path / "ft.onnx"
    assert (
        cli.main(["train", str(tmp_path / "examples" / "lenet-finetune.yaml"), "-o", str(out)]) == 0
    )
    stdout = capsys.readouterr().out
    assert "  loaded: conv1, conv2, fc1, fc2" in stdout
    assert "  fresh:  head (not in the model)" in stdout
    assert "  frozen: conv1, conv2" in stdout
    accuracy = float(stdout.split("accuracy ")[1].split()[0].rstrip(","))
    assert accuracy >= 0.95


def test_alexnet_compiles_loads_and_runs(tmp_path, capsys):
    out = tmp_path / "alexnet.onnx"
    assert cli.main(["compile", str(SPECS / "alexnet.yaml"), "-o", str(out)]) == 0
    assert "60,965,224 parameters" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["alexnet.onnx"]  # under 2 GB: one file
    model = Model(out, device="cpu")
    assert model.input_shape == (3, 227, 227)
    # Chunks hold at most 256 MiB of images by default, not 16384 rows of 600 kB each.
    assert model.chunk_size == 2**28 // (4 * 3 * 227 * 227) == 434
    x = np.random.default_rng(0).normal(size=(3, 3, 227, 227))
    pred = model.predict(x)
    assert pred.probabilities.shape == (3, 1000)
    np.testing.assert_allclose(pred.probabilities.sum(axis=1), 1, rtol=1e-5)
    chunked = Model(out, device="cpu", chunk_size=2).run(x)["probabilities"]
    np.testing.assert_allclose(chunked, pred.probabilities, rtol=1e-5, atol=1e-7)
    ops = [n.op_type for n in onnx.load(str(out), load_external_data=False).graph.node]
    assert ops.count("Conv") == 5 and ops.count("LRN") == 2 and ops.count("MaxPool") == 3
    assert "Dropout" not in ops and ops.count("Gemm") == 3
    assert ops.index("Flatten") < ops.index("Gemm")


def test_large_models_use_external_data(tmp_path, monkeypatch):
    """Over protobuf's limit (lowered here to 10 kB), tensors go to <name>.data, found by a
    relative location: the pair of files can move anywhere together."""
    module = importlib.import_module("nnspec.onnxio.lower")  # the function shadows it
    monkeypatch.setattr(module, "MAX_PROTOBUF", 10_000)
    network = nnspec.train(nnspec.load_spec(SPECS / "digits.yaml")).network
    nnspec.export(network, tmp_path / "d.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.onnx", "d.onnx.data"]
    proto = onnx.load(str(tmp_path / "d.onnx"), load_external_data=False)
    weight = next(t for t in proto.graph.initializer if t.name == "dense_0.weight")
    assert {e.key: e.value for e in weight.external_data}["location"] == "d.onnx.data"
    assert (tmp_path / "d.onnx").stat().st_size < 10_000
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("d.onnx", "d.onnx.data"):
        shutil.move(tmp_path / name, moved / name)
    x = nnspec.data.core.load_builtin("digits").x[:37]
    got = Model(moved / "d.onnx", device="cpu").run(x)["probabilities"]
    np.testing.assert_allclose(got, network.predict(x)["probabilities"], rtol=1e-4, atol=1e-5)
    # init.from reads external data too.
    spec_text = (SPECS / "digits.yaml").read_text() + "init: {from: d.onnx}\n"
    (moved / "again.yaml").write_text(spec_text)
    again = nnspec.build_network(nnspec.load_spec(moved / "again.yaml"), dtype="float32")
    np.testing.assert_array_equal(
        again.parameters()["dense_0.weight"], network.parameters()["dense_0.weight"]
    )


@pytest.mark.slow
def test_a_model_over_two_gigabytes(tmp_path):
    """A real 2.1 GB model (537 M parameters): external data, checked, loaded, run."""
    spec = nnspec.load_spec(
        "spec_version: 1\nname: huge\ntask: regression\ninput: {features: 16384}\n"
        "layers: [{kind: dense, units: 32768, use_bias: false}, {kind: dense, units: 1}]\n"
        "loss: mse\n"
    )
    network = nnspec.build_network(spec)
    nnspec.export(network, tmp_path / "huge.onnx")
    data = tmp_path / "huge.onnx.data"
    assert data.stat().st_size > 2**31 and (tmp_path / "huge.onnx").stat().st_size < 2**20
    x = np.random.default_rng(0).normal(size=(2, 16384))
    got = Model(tmp_path / "huge.onnx", device="cpu").run(x)["prediction"]
    np.testing.assert_allclose(got, network.predict(x)["prediction"], rtol=1e-3, atol=1e-4)


def test_impossible_stack_is_reported_before_any_data_is_read(tmp_path, capsys):
    """With input.shape given, shape inference runs first: the NPZ named is never opened."""
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "spec_version: 1\nname: bad\ntask: classification\n"
        "input: {shape: [1, 8, 8]}\n"
        "data: {npz: not-there.npz}\n"
        "layers:\n"
        "  - {kind: conv2d, filters: 16, kernel_size: 8}\n"
        "  - {kind: maxpool2d, kernel_size: 2}\n"
        "  - {kind: flatten}\n"
        "  - {kind: dense, units: 10, activation: softmax}\n"
        "loss: cross_entropy\n"
    )
    assert cli.main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"{spec}:8:5: layers[1] (maxpool2d): input 16×1×1 is smaller than the 2×2 window\n"
    )


def test_train_writes_large_models_with_external_data(tmp_path, monkeypatch, capsys):
    """nnspec train too: parity is checked on the staged files before they are put in place."""
    module = importlib.import_module("nnspec.onnxio.lower")
    monkeypatch.setattr(module, "MAX_PROTOBUF", 10_000)
    out = tmp_path / "iris.onnx"
    args = ["train", str(SPECS / "iris.yaml"), "-o", str(out), "-q", "--metrics"]
    assert cli.main([*args, str(tmp_path / "m.json")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.onnx", "iris.onnx.data", "m.json"]
    parity = json.loads((tmp_path / "m.json").read_text())["parity"]
    assert parity["worst_ratio"] <= 1 and parity["samples"] == 30
    meta = Model(out, device="cpu").metadata
    assert json.loads(meta["nnspec_parity"]) == parity

    from nnspec.onnxio import parity as parity_module

    def mismatch(network, model, x):
        raise nnspec.errors.ParityError("the exported model does not match (forced)")

    monkeypatch.setattr(parity_module, "check_parity", mismatch)
    elsewhere = tmp_path / "fresh"
    elsewhere.mkdir()
    assert cli.main(["train", str(SPECS / "iris.yaml"), "-o", str(elsewhere / "m.onnx"), "-q"]) == 3
    assert "forced" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


def test_inspect_tells_where_the_weights_are(tmp_path, monkeypatch, capsys):
    module = importlib.import_module("nnspec.onnxio.lower")
    monkeypatch.setattr(module, "MAX_PROTOBUF", 10_000)
    out = tmp_path / "d.onnx"
    assert cli.main(["compile", str(SPECS / "digits.yaml"), "-o", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", str(out)]) == 0
    assert "  weights:   in d.onnx.data (32.0 KiB)" in capsys.readouterr().out
    (tmp_path / "d.onnx.data").unlink()
    assert cli.main(["inspect", str(out)]) == 0
    assert "d.onnx.data, which is MISSING" in capsys.readouterr().out
