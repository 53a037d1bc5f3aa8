"""``nnspec import`` on models written by the real producers (the committed fixtures, made by
tests/onnxio/fixtures/make_fixtures.py with torch 2.13 and skl2onnx 1.20), and on nnspec's own
exports: each imports, its spec compiles as ``nnspec compile`` compiles it, and the compiled
model matches the source in onnxruntime on seeded inputs that the importer never saw."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest
import yaml
from import_checks import FIXTURES, max_errors, run, seeded_inputs, softmax

import nnspec
from nnspec.cli.commands import main
from nnspec.onnxio.import_model import import_graph
from nnspec.onnxio.import_model import write_import as _write
from nnspec.pipeline import compile_imported

sys.path.insert(0, str(FIXTURES))
from make_fixtures import FIXTURES as MADE  # noqa: E402

# fixture -> (task, layer kinds in order, how its float output compares with probabilities or
# prediction, class names or None)
EXPECTED = {
    "torch_ts_convnet_opset9.onnx": (
        "regression",
        ["conv2d", "batchnorm", "conv2d", "maxpool2d", "avgpool2d", "flatten", "dense"],
        "raw",
        None,
    ),
    "torch_ts_mlp_opset13.onnx": ("classification", ["dense"] * 3, "exp", ["0", "1", "2"]),
    "torch_ts_convnet_opset17.onnx": (
        "classification",
        ["conv2d", "maxpool2d", "globalavgpool2d", "flatten", "dense"],
        "raw",
        ["0", "1", "2", "3"],
    ),
    "torch_dynamo_convnet.onnx": (
        "regression",
        ["conv2d", "maxpool2d", "conv2d", "globalavgpool2d", "flatten", "dense"],
        "raw",
        None,
    ),
    "torch_dynamo_mlp_static.onnx": ("classification", ["dense"] * 2, "raw", list("0123")),
    "sklearn_mlpclassifier_zipmap.onnx": ("classification", ["dense"] * 2, "raw", list("012")),
    "sklearn_mlpclassifier_nozipmap.onnx": (
        "classification",
        ["dense"] * 3,
        "raw",
        ["setosa", "versicolor", "virginica"],
    ),
    "sklearn_mlpclassifier_binary.onnx": ("classification", ["dense"] * 2, "raw", ["0", "1"]),
    "sklearn_mlpregressor.onnx": ("regression", ["dense"] * 2, "raw", None),
    "sklearn_pipeline_scaler_mlp.onnx": ("classification", ["dense"] * 2, "raw", list("012")),
}
REFUSED = {"sklearn_mlpregressor_2targets.onnx": "reshapes samples of 2 values to [-1, 1]"}


def write_import(imp, path):
    return _write(imp, path, compile_imported)


def test_every_fixture_is_listed_and_committed():
    assert set(EXPECTED) | set(REFUSED) == set(MADE)
    for name in MADE:
        path = FIXTURES / name
        assert path.is_file(), f"{name} missing: run tests/onnxio/fixtures/make_fixtures.py"
        assert path.stat().st_size < 64_000


def _source_reference(path, x):
    """The float output that probabilities/prediction stand for, and the label output."""
    outs = run(path, x)
    model = onnx.load(str(path), load_external_data=False)
    floats, labels = None, None
    for o in model.graph.output:
        t = o.type
        if t.WhichOneof("value") == "sequence_type":  # ZipMap: a list of {class: p}
            floats = np.array([[d[k] for k in sorted(d)] for d in outs[o.name]])
        elif t.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            floats = outs[o.name]
        else:
            labels = [v.decode() if isinstance(v, bytes) else str(v) for v in outs[o.name]]
    return floats, labels


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_imports_and_compiles_to_the_same_outputs(name, tmp_path, capsys):
    task, kinds, compare, classes = EXPECTED[name]
    spec_path = tmp_path / "imported.yaml"
    assert main(["import", str(FIXTURES / name), "-o", str(spec_path)]) == 0
    printed = capsys.readouterr().out
    assert "check (onnxruntime" in printed and f"wrote {spec_path}" in printed
    data = yaml.safe_load(spec_path.read_text())
    assert data["task"] == task
    assert [layer["kind"] for layer in data["layers"]] == kinds
    assert data.get("classes") == classes
    assert data["init"] == {"from": "imported.weights.npz"}
    # Compiled as a user would compile it, from the files on disk.
    out = tmp_path / "compiled.onnx"
    assert main(["compile", str(spec_path), "-o", str(out)]) == 0
    x = seeded_inputs(FIXTURES / name)
    want, labels = _source_reference(FIXTURES / name, x)
    if compare == "exp":
        want = np.exp(want)
    elif (
        task == "classification"
        and "softmax" not in name
        and not np.allclose(want.sum(axis=1), 1, atol=1e-5)
    ):
        want = softmax(want)
    got = run(out, x)
    key = "prediction" if task == "regression" else "probabilities"
    np.testing.assert_allclose(got[key], want, rtol=1e-4, atol=1e-5)
    abs_err, rel_err = max_errors(got[key], want)
    print(f"{name}: max abs err {abs_err:.3g}, max rel err {rel_err:.3g}")
    if labels is not None:
        assert labels == [classes[i] for i in got["label"]]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_fixture_that_nnspec_cannot_express_is_refused(name, tmp_path, capsys):
    spec_path = tmp_path / "imported.yaml"
    assert main(["import", str(FIXTURES / name), "-o", str(spec_path)]) == 2
    err = capsys.readouterr().err
    assert REFUSED[name] in err and "'Reshape' (Reshape)" in err and "node 7 of 7" in err
    assert list(tmp_path.iterdir()) == []


def test_logits_import_as_a_classifier_on_request(tmp_path):
    path = FIXTURES / "torch_ts_convnet_opset9.onnx"
    imp = import_graph(path, task="classification", classes=list("abcde"))
    check = write_import(imp, tmp_path / "c.yaml")
    assert check["worst_ratio"] <= 1
    spec = nnspec.load_spec(tmp_path / "c.yaml")
    assert spec.task == "classification" and spec.classes == list("abcde")
    assert spec.layers[-1].activation == "softmax" and spec.loss == "cross_entropy"
    x = seeded_inputs(path)
    got = run(nnspec.compile(spec).model, x)["probabilities"]
    np.testing.assert_allclose(got, softmax(run(path, x)["output"]), rtol=1e-4, atol=1e-5)


def test_names_come_from_the_graph(tmp_path):
    write_import(import_graph(FIXTURES / "torch_ts_convnet_opset9.onnx"), tmp_path / "s.yaml")
    names = [layer["name"] for layer in yaml.safe_load((tmp_path / "s.yaml").read_text())["layers"]]
    assert names == [
        "features.0", "features.2", "features.3", "features.5", "features.6", "classifier.0",
        "classifier.2",
    ]  # fmt: skip
    with np.load(tmp_path / "s.weights.npz", allow_pickle=False) as w:
        assert w["classifier.2.weight"].shape == (54, 5)  # Gemm's (out, in) B as (in, out)
        m = onnx.load(str(FIXTURES / "torch_ts_convnet_opset9.onnx"))
        b = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
        np.testing.assert_array_equal(w["classifier.2.weight"], b["classifier.2.weight"].T)


def test_sklearn_standard_scaler_becomes_standardize(tmp_path):
    write_import(import_graph(FIXTURES / "sklearn_pipeline_scaler_mlp.onnx"), tmp_path / "s.yaml")
    assert nnspec.load_spec(tmp_path / "s.yaml").preprocess.standardize
    m = onnx.load(str(FIXTURES / "sklearn_pipeline_scaler_mlp.onnx"))
    scaler = next(n for n in m.graph.node if n.op_type == "Scaler")
    a = {x.name: list(x.floats) for x in scaler.attribute}
    with np.load(tmp_path / "s.weights.npz", allow_pickle=False) as w:
        np.testing.assert_allclose(w["preprocess.mean"], a["offset"], rtol=1e-6)
        np.testing.assert_allclose(w["preprocess.scale"], 1 / np.array(a["scale"]), rtol=1e-6)


def test_preprocessing_in_the_graph_becomes_standardize(tmp_path):
    write_import(import_graph(FIXTURES / "torch_ts_mlp_opset13.onnx"), tmp_path / "s.yaml")
    spec = nnspec.load_spec(tmp_path / "s.yaml")
    assert spec.preprocess.standardize
    with np.load(tmp_path / "s.weights.npz", allow_pickle=False) as w:
        np.testing.assert_allclose(w["preprocess.mean"], [1.0, -2.0, 0.5, 3.0, 0.0])
        np.testing.assert_allclose(w["preprocess.scale"], [2.0, 0.5, 1.0, 4.0, 1.5])


def test_the_importers_own_check_catches_a_wrong_weight(tmp_path, monkeypatch):
    """The check is real: a weight changed after matching fails it, and nothing is written."""
    imp = import_graph(FIXTURES / "sklearn_mlpclassifier_zipmap.onnx")
    imp.state.layers[0].arrays["weight"][0, 0] += 0.5
    with pytest.raises(nnspec.errors.ParityError, match="does not reproduce"):
        write_import(imp, tmp_path / "s.yaml")
    assert list(tmp_path.iterdir()) == []


# -- nnspec's own exports -------------------------------------------------------------------


def _trained(spec_path):
    result = nnspec.train(nnspec.load_spec(spec_path), progress=False)
    return nnspec.export(result)


@pytest.mark.parametrize("spec_name", ["iris", "iris2d", "mcycle", "digits"])
def test_nnspec_round_trip_of_trained_models(spec_name, tmp_path):
    from conftest import ROOT

    model = _trained(ROOT / "specs" / f"{spec_name}.yaml")
    path = tmp_path / f"{spec_name}.onnx"
    onnx.save(model, str(path))
    imp = import_graph(path)
    write_import(imp, tmp_path / "back.yaml")
    back = nnspec.compile(nnspec.load_spec(tmp_path / "back.yaml")).model
    meta = {p.key: p.value for p in model.metadata_props}
    x = seeded_inputs(path, batch=20)
    shape = json.loads(meta["nnspec_input_shape"])
    x = x.reshape(len(x), *shape)
    a, b = run(model, x), run(back, x)
    for key in a:
        if a[key].dtype.kind == "f":
            np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_array_equal(b[key], a[key])


def test_nnspec_round_trip_of_every_documented_construct(tmp_path):
    """Every row of docs/onnx.md (each layer kind and option, activation, output and
    preprocessing), exported and imported back; only the even-size LRN, which nnspec writes
    as its definition (a branch), is refused, naming its Div."""
    from nnspec._docgen.onnx_md import FRAME, _activation_cases, _export, layer_cases

    cases = layer_cases() + FRAME + _activation_cases()
    refused = []
    for i, case in enumerate(cases):
        path = tmp_path / f"case{i}.onnx"
        onnx.save(_export(case), str(path))
        try:
            check = write_import(import_graph(path), tmp_path / f"case{i}.yaml")
        except nnspec.errors.ModelError as e:
            refused.append((case.construct, str(e)))
            continue
        assert check["worst_ratio"] <= 1, case.construct
    assert [c for c, _ in refused] == ["`lrn`, even `size`"]
    assert "'x/Div' (Div)" in refused[0][1] and "no branches" in refused[0][1]


def test_python_api_reports_its_stages(tmp_path):
    heard = []
    imported = nnspec.import_onnx(
        FIXTURES / "sklearn_mlpregressor.onnx", tmp_path / "r.yaml", say=heard.append
    )
    assert [m.split()[0] for m in heard] == [
        "reading",
        "matching",
        "writing",
        "compiling",
        "running",
    ]
    assert imported.check["worst_ratio"] <= 1 and (tmp_path / "r.weights.npz").is_file()
