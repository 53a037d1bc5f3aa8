"""Tabular models exported: raw columns in, imputation and one-hot encoding in the graph, the
same answers as the NumPy network in onnxruntime, in onnx's ReferenceEvaluator and in plain
onnxruntime fed by hand."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import ROOT
from onnx.reference import ReferenceEvaluator
from tabular_tables import cars_spec, write_cars

import nnspec
from nnspec import pipeline
from nnspec.errors import ModelError

RTOL, ATOL = 1e-4, 1e-5


def _feeds(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What plain onnxruntime takes: float32 numbers (NaN missing), object arrays of str."""
    return {
        k: (v.astype(object) if v.dtype == object else v.astype(np.float32))
        for k, v in columns.items()
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cars")
    write_cars(tmp / "cars.csv")
    (tmp / "cars.yaml").write_text(cars_spec(task="classification", epochs=40))
    result = nnspec.train(nnspec.load_spec(tmp / "cars.yaml"))
    return result, tmp


def _assert_same(got: dict, want: dict):
    for key in ("probabilities", "prediction"):
        if key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=RTOL, atol=ATOL)
    if "label" in want:
        np.testing.assert_array_equal(got["label"], want["label"])


def test_the_graph_takes_one_input_per_raw_column(trained):
    result, tmp = trained
    model = nnspec.export(result, tmp / "cars.onnx")
    inputs = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert inputs == {
        "displacement": onnx.TensorProto.FLOAT,
        "horsepower": onnx.TensorProto.FLOAT,
        "weight": onnx.TensorProto.FLOAT,
        "acceleration": onnx.TensorProto.FLOAT,
        "year": onnx.TensorProto.FLOAT,
        "mpg": onnx.TensorProto.FLOAT,
        "cylinders": onnx.TensorProto.STRING,
    }
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("IsNaN") == 6 and ops.count("LabelEncoder") == 1
    meta = {p.key: p.value for p in model.metadata_props}
    tab = json.loads(meta["nnspec_tabular"])
    assert [c["name"] for c in tab["columns"]][-1] == "cylinders"
    parity = json.loads(meta["nnspec_parity"])
    assert parity["inputs"] == "test" and parity["samples"] == 60 and parity["worst_ratio"] <= 1


def test_plain_onnxruntime_and_the_reference_evaluator_match_numpy(trained):
    """Raw held-out rows, with their empty cells, plus rows with unknown and missing
    categories and missing numbers everywhere."""
    result, tmp = trained
    model = nnspec.export(result)
    test = result.splits.test.columns
    odd = {k: v[:5].copy() for k, v in test.items()}
    odd["cylinders"][:3] = ["12", "", "four"]
    for k in ("horsepower", "weight", "mpg"):
        odd[k][1:4] = np.nan
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = ReferenceEvaluator(model)
    names = [o.name for o in model.graph.output]
    for columns in (test, odd):
        want = result.network.predict(columns)
        for run in (sess.run, ref.run):
            got = dict(zip(names, run(None, _feeds(columns)), strict=True))
            _assert_same(got, want)
    assert np.isnan(test["horsepower"]).any()  # the held-out rows do have missing cells
    # An unknown category is all zeros: the same as a missing one.
    enc = result.network.tabular.transform(odd)
    assert enc[0, -5:].sum() == 0 and enc[1, -5:].sum() == 0


@pytest.mark.parametrize("opset", [13, 22])
def test_other_opsets(trained, opset):
    result, _ = trained
    model = nnspec.export(result, opset=opset)
    assert {o.domain: o.version for o in model.opset_import} == {"": opset, "ai.onnx.ml": 2}


def test_an_untrained_tabular_model_is_checked_on_seeded_raw_rows(trained):
    result, _ = trained
    model = nnspec.export(result.network)
    parity = json.loads({p.key: p.value for p in model.metadata_props}["nnspec_parity"])
    assert parity["inputs"] == "random" and parity["samples"] == 8


def test_compile_a_tabular_spec(trained):
    _, tmp = trained
    compiled = nnspec.compile(nnspec.load_spec(tmp / "cars.yaml"))
    assert len(compiled.model.graph.input) == 7


def test_a_column_named_like_an_output_is_refused(trained):
    result, _ = trained
    enc = result.network.tabular
    network = result.network
    renamed = type(enc)(
        ["label" if n == "mpg" else n for n in enc.numeric],
        enc.categorical,
        enc.categories,
        {("label" if k == "mpg" else k): v for k, v in enc.fill.items()},
        enc.strategies,
    )
    network.tabular = renamed
    try:
        with pytest.raises(ModelError, match="label would share a name with the model's outputs"):
            nnspec.export(network)
    finally:
        network.tabular = enc


def test_the_shipped_penguins_spec_trains_and_predicts_raw_rows(tmp_path):
    spec = nnspec.load_spec(ROOT / "specs" / "penguins.yaml")
    result = nnspec.train(spec)
    assert result.metrics["accuracy"] >= 0.95
    model = nnspec.export(result, tmp_path / "penguins.onnx")
    enc = result.network.tabular
    assert enc.categories["year"] == ["2007", "2008", "2009"]
    assert enc.describe() == "4 numeric + island (3) + sex (2) + year (3) = 12"
    dataset = pipeline.load_data(spec)
    assert np.isnan(dataset.columns["body_mass_g"]).sum() == 2
    assert (dataset.columns["sex"] == "").sum() == 11
    from nnspec_runtime import Model

    runtime = Model(tmp_path / "penguins.onnx", device="cpu")
    pred = runtime.predict(result.splits.test.columns)
    want = result.network.predict(result.splits.test.columns)
    np.testing.assert_allclose(pred.probabilities, want["probabilities"], rtol=RTOL, atol=ATOL)
    assert len(model.graph.input) == 7


def test_the_plain_onnxruntime_example_of_onnx_md_runs(tmp_path, monkeypatch):
    """docs/onnx.md's example, run as written on the model its tables are read from."""
    import re

    from nnspec._docgen.onnx_md import TABULAR_EXAMPLE, tabular_doc_network

    nnspec.export(tabular_doc_network(), tmp_path / "cars.onnx")
    code = re.search(r"```python\n(.*?)```", TABULAR_EXAMPLE, re.S).group(1)
    assert code in (ROOT / "docs" / "onnx.md").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "docs/onnx.md", "exec"), scope)
    assert scope["probabilities"].shape == (2, 3) and scope["label"].shape == (2,)
    np.testing.assert_allclose(scope["probabilities"].sum(axis=1), 1.0, rtol=1e-6)
