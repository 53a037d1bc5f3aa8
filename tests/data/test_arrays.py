"""nnspec.train on in-memory data: NumPy arrays, pandas DataFrames, pyarrow Tables."""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec.data import arrays
from nnspec.errors import DataError, SpecError

pd = pytest.importorskip("pandas")

SPEC = {
    "spec_version": 1,
    "name": "mem",
    "task": "classification",
    "layers": [
        {"kind": "dense", "units": 16, "activation": "relu"},
        {"kind": "dense", "units": "auto", "activation": "softmax"},
    ],
    "loss": "cross_entropy",
    "train": {"epochs": 25, "batch_size": 16, "optimizer": {"kind": "adam", "lr": 0.01}},
}
NAMES = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def iris():
    from nnspec.data.core import load_builtin

    ds = load_builtin("iris", task="classification")
    return ds.x, np.array(NAMES)[ds.y]


def frame(iris):
    x, labels = iris
    df = pd.DataFrame(x, columns=["sl", "sw", "pl", "pw"])
    df["species"] = labels
    return df


def test_dataframe_with_string_labels_trains_and_exports(iris, tmp_path):
    result = nnspec.train(SPEC, frame(iris), "species")
    io = result.network.io
    assert io.class_names == NAMES and io.outputs == 3
    assert io.feature_names == ["sl", "sw", "pl", "pw"]
    assert result.metrics["accuracy"] >= 0.9
    assert len(result.splits.test.x) == 30  # the default test_fraction, 0.2, stratified
    model = nnspec.export(result, tmp_path / "m.onnx")
    from nnspec_runtime import Model

    m = Model(tmp_path / "m.onnx")
    assert m.feature_names == ["sl", "sw", "pl", "pw"]
    assert nnspec.pipeline.read_metadata(model)["parity"]["inputs"] == "test"


def test_numpy_arrow_and_pandas_give_the_same_weights(iris):
    pa = pytest.importorskip("pyarrow")
    df = frame(iris)
    a = nnspec.train(SPEC, df, "species")
    b = nnspec.train(SPEC, pa.Table.from_pandas(df), "species")
    c = nnspec.train(SPEC, iris[0], list(iris[1]))
    d = nnspec.train(SPEC, df.drop(columns="species"), df["species"])
    for other in (b, c, d):
        for k, v in a.network.parameters().items():
            np.testing.assert_array_equal(v, other.network.parameters()[k])


def test_integer_labels_keep_their_values_as_class_names(iris):
    x, labels = iris
    y = np.array([10, 2, 7])[np.searchsorted(NAMES, labels)]
    result = nnspec.train(SPEC, x, y, test_fraction=0)
    assert result.network.io.class_names == ["2", "7", "10"]  # sorted as numbers
    assert result.splits.test is None and result.metrics == {}


def test_fixed_validation_and_test_are_used_as_given(iris):
    x, y = iris
    spec = {**SPEC, "train": {**SPEC["train"], "early_stopping": {"patience": 3}}}
    result = nnspec.train(
        spec, x[::2], y[::2], validation=(x[1::4], y[1::4]), test=(x[3::4], y[3::4])
    )
    assert len(result.splits.train.x) == 75  # nothing cut from x
    np.testing.assert_array_equal(result.splits.val.x, x[1::4])
    np.testing.assert_array_equal(result.splits.test.x, x[3::4])
    assert "val_loss" in result.history.epochs[0]


def test_held_out_labels_are_renumbered_to_the_training_classes(iris):
    x, y = iris
    keep = y != "setosa"
    test_x, test_y = x[keep][:10], y[keep][:10]  # versicolor only: index 1 in training
    result = nnspec.train(SPEC, x, y, test=(test_x, test_y))
    assert set(result.splits.test.y.tolist()) == {1}
    with pytest.raises(DataError, match=r"'daisy'.* not among the training classes"):
        nnspec.train(SPEC, x, y, test=(x[:2], ["setosa", "daisy"]))


def test_regression_on_arrays_fills_units_auto():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = np.stack([x @ [1.0, -2.0, 0.5], x[:, 0] * 2], axis=1)
    spec = {
        **SPEC,
        "task": "regression",
        "loss": "mse",
        "layers": [
            {"kind": "dense", "units": 16, "activation": "tanh"},
            {"kind": "dense", "units": "auto"},
        ],
        "train": {**SPEC["train"], "epochs": 60},
    }
    result = nnspec.train(spec, x, y)
    assert result.network.io.outputs == 2 and result.network.spec.layers[-1].units == 2
    assert result.metrics["r2"] > 0.9


def test_images_as_nchw_arrays():
    from nnspec.data.core import load_builtin

    ds = load_builtin("digits", task="classification")
    images = ds.x.reshape(-1, 8, 8)[:400]  # (samples, h, w): one channel
    spec = {
        **SPEC,
        "layers": [
            {"kind": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
            {"kind": "flatten"},
            {"kind": "dense", "units": "auto", "activation": "softmax"},
        ],
        "train": {**SPEC["train"], "epochs": 3},
    }
    result = nnspec.train(spec, images, ds.y[:400])
    assert result.network.io.shape == (1, 8, 8)


@pytest.mark.parametrize(
    "x,y,message",
    [
        (np.zeros((4, 2)), [0, 1, 0], r"y: expected 4 labels, one per sample of x, got 3"),
        (np.zeros(4), [0, 1, 0, 1], r"shape \(4,\); a single feature is x.reshape"),
        (np.array([[1, "a"]] * 4, dtype=object), [0, 1, 0, 1], r"dtype object"),
        (np.array([[1.0, np.nan]] * 4), [0, 1, 0, 1], r"x: column 1, row 0: expected finite"),
        (np.zeros((4, 2)), [0, None, 0, 1], r"y: label at index 1 is None"),
        (np.zeros((4, 2)), [0, 0, 0, 0], r"at least 2 classes"),
        (np.zeros((4, 2)), [0, "a", 0, 1], r"mixed types \(int, str\)"),
        (np.zeros((4, 2)), None, r"got x without y"),
    ],
)
def test_bad_arrays_are_refused_with_what_was_expected(x, y, message):
    with pytest.raises(DataError, match=message):
        nnspec.train(SPEC, x, y)


def test_bad_frames_name_the_column():
    df = pd.DataFrame({"a": [1.0, 2.0, None, 4.0], "b": ["x", "y", "z", "w"], "t": [0, 1] * 2})
    with pytest.raises(DataError, match=r"column 'a' has a missing value .* at row 2"):
        nnspec.train(SPEC, df[["a", "t"]], "t")
    with pytest.raises(DataError, match=r"column 'b': expected numbers, got (object|str) values"):
        nnspec.train(SPEC, df[["b", "t"]].assign(a=1.0), "t")
    with pytest.raises(DataError, match=r"no target column 'nope'; the columns are: a, b, t"):
        nnspec.train(SPEC, df, "nope")


def test_arrow_nulls_and_strings_are_refused():
    pa = pytest.importorskip("pyarrow")
    t = pa.table({"a": [1.0, None, 3.0, 4.0], "s": ["p", "q", "r", "s"], "y": [0, 1, 0, 1]})
    with pytest.raises(DataError, match=r"column 'a' has a missing value \(null\) at row 1"):
        arrays.from_frame(t.select(["a"]))
    with pytest.raises(DataError, match=r"column 's': expected numbers, got string"):
        arrays.from_frame(t.select(["s"]))


def test_the_spec_decides_the_input_size(iris):
    x, y = iris
    spec = {**SPEC, "input": {"features": 3}}
    with pytest.raises(SpecError, match=r"input.features: the data has 4 features per sample"):
        nnspec.train(spec, x, y)
    with pytest.raises(DataError, match=r"test data \(test\): has 3 features per sample"):
        nnspec.train(SPEC, x, y, test=(x[:5, :3], y[:5]))


def test_units_auto_is_shown_as_auto_without_data_and_refused_on_hidden_layers(capsys):
    from nnspec.cli import main
    from nnspec.spec.shapes import summary

    text = (
        "spec_version: 1\nname: a\ntask: classification\ninput: {features: 4}\nlayers:\n"
        "  - {kind: dense, units: 8, activation: relu}\n"
        "  - {kind: dense, units: auto, activation: softmax}\nloss: cross_entropy\n"
    )
    spec = nnspec.load_spec(text)
    io, rows = nnspec.resolve(spec)
    data = summary(spec, io, rows)
    assert data["layers"][-1]["output_shape"] == [None, "auto"]
    assert data["layers"][-1]["params"] is None and data["total_params"] == 40
    with_classes = nnspec.load_spec(text.replace("layers:", "classes: [a, b, c]\nlayers:"))
    assert nnspec.resolve(with_classes)[1][-1].params == 8 * 3 + 3
    binary = nnspec.load_spec(
        text.replace("layers:", "classes: [a, b]\nlayers:").replace(
            "softmax}\nloss: cross_entropy", "logistic}\nloss: binary_cross_entropy"
        )
    )
    assert nnspec.resolve(binary)[0].outputs == 1
    hidden = nnspec.load_spec(text.replace("units: 8", "units: auto"))
    with pytest.raises(SpecError, match=r"layers\[0\].units: auto is only allowed on the output"):
        nnspec.resolve(hidden)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.yaml"
        path.write_text(text)
        assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(batch, auto)" in out and "40 + auto" in out


def test_numpy_training_imports_neither_pandas_nor_pyarrow():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, nnspec\n"
        f"SPEC = {SPEC!r}\n"
        "x = np.random.default_rng(0).normal(size=(40, 3)); y = (x[:, 0] > 0).astype(int)\n"
        "nnspec.train({**SPEC, 'train': {'epochs': 1}}, x, y)\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'sklearn') if m in sys.modules))\n"
    )
    from conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_tabular_spec_takes_a_raw_dataframe_with_its_own_test_frame(tmp_path):
    from conftest import ROOT

    from nnspec_runtime import Model

    df = pd.read_csv(ROOT / "nnspec" / "data" / "datasets" / "penguins.csv")  # NA -> NaN
    text = (ROOT / "specs" / "penguins.yaml").read_text()
    text = text.replace("  csv: ../nnspec/data/datasets/penguins.csv\n  target: species\n", "")
    text = text.replace("data:\n  test_fraction: 0.25\n", "")
    spec = nnspec.load_spec(text)
    assert spec.data is None and spec.preprocess.categorical == ["island", "sex", "year"]
    result = nnspec.train(spec, df.iloc[::2], "species", test=(df.iloc[1::2], "species"))
    assert len(result.splits.test.x) == 172 and result.metrics["accuracy"] > 0.9
    assert "island=Biscoe" in result.network.io.feature_names
    nnspec.export(result, tmp_path / "p.onnx")
    got = Model(tmp_path / "p.onnx").predict(df.drop(columns="species").iloc[1::2])
    assert (got.labels == df["species"].iloc[1::2].to_numpy()).mean() == pytest.approx(
        result.metrics["accuracy"]
    )
    with pytest.raises(DataError, match="need named columns; expected a pandas DataFrame"):
        nnspec.train(spec, np.zeros((4, 3)), [0, 1, 0, 1])
