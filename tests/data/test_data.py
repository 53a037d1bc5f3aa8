"""Built-in datasets, CSV and NPZ files given by path, and the errors they give."""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec import pipeline
from nnspec.data import core as data
from nnspec.errors import DataError


@pytest.mark.parametrize(
    "name,shape,outputs",
    [
        ("iris", (150, 4), 3),
        ("mcycle", (133, 1), 1),
        ("digits", (1797, 64), 10),
        ("digits28", (1797, 784), 10),
    ],
)
def test_builtin_shapes_match_their_static_info(name, shape, outputs):
    ds = data.load_builtin(name, task="regression" if name == "mcycle" else "classification")
    assert ds.x.shape == shape and ds.x.dtype == np.float64
    assert ds.info.features == shape[1] and ds.info.outputs == outputs
    assert len(ds.info.feature_names) == shape[1]
    assert np.isfinite(ds.x).all()


def test_iris_and_mcycle_values():
    iris = data.load_builtin("iris", task="classification")
    assert iris.x[0].tolist() == [5.1, 3.5, 1.4, 0.2]
    assert np.bincount(iris.y).tolist() == [50, 50, 50]
    mcycle = data.load_builtin("mcycle", task="regression")
    assert mcycle.x[0, 0] == 2.4 and mcycle.y.shape == (133, 1)
    assert mcycle.y.min() == pytest.approx(-134.0)


def test_digits28_is_a_smooth_upscaling_of_digits():
    small = data.load_builtin("digits", task="classification")
    big = data.load_builtin("digits28", task="classification")
    np.testing.assert_array_equal(small.y, big.y)
    # Bilinear resampling keeps the pixel range and, up to the borders, the mean brightness.
    assert big.x.min() >= 0 and big.x.max() <= 16
    np.testing.assert_allclose(big.x.mean(axis=1), small.x.mean(axis=1), atol=0.35)
    # Rows of the interpolation matrix are convex weights.
    r = data._bilinear_matrix(28, 8)
    np.testing.assert_allclose(r.sum(axis=1), 1)


def write_spec(
    tmp_path, data_line: str, task="classification", units=2, act="softmax", loss="cross_entropy"
):
    path = tmp_path / "spec.yaml"
    path.write_text(
        f"spec_version: 1\nname: t\ntask: {task}\ndata: {data_line}\nlayers:\n"
        f"  - {{kind: dense, units: 4, activation: tanh}}\n"
        f"  - {{kind: dense, units: {units}, activation: {act}}}\nloss: {loss}\n"
        "train: {epochs: 3, batch_size: 4}\n"
    )
    return nnspec.load_spec(path)


def test_csv_relative_to_the_spec_file(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    rows = ["a,b,kind"] + [f"{i},{i % 3},{'yes' if i % 2 else 'no'}" for i in range(20)]
    (tmp_path / "d" / "x.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir("/")
    spec = write_spec(tmp_path, "{csv: d/x.csv, target: kind, test_fraction: 0.25}")
    ds = pipeline.load_data(spec)
    assert ds.x.shape == (20, 2) and ds.info.class_names == ["no", "yes"]
    assert ds.info.feature_names == ["a", "b"]
    assert nnspec.train(spec).history.epochs_run == 3


def test_csv_regression_several_targets(tmp_path):
    rows = ["x,y1,y2"] + [f"{i},{2 * i},{-i}" for i in range(12)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    spec = write_spec(
        tmp_path, "{csv: r.csv, target: [y1, y2]}", "regression", 2, "identity", "mse"
    )
    io, _ = pipeline.resolve(spec)
    assert io.features == 1 and io.outputs == 2 and io.target_names == ["y1", "y2"]


@pytest.mark.parametrize(
    "content,match",
    [
        ("a,b,kind\n1,2,x\n3,oops,y\n", r"x.csv:3: column 'b': expected a number, got 'oops'"),
        ("a,b,kind\n1,2,x\n3,4\n", r"x.csv:3: expected 3 cells like the header, got 2"),
        ("a,b,label\n1,2,x\n", r"column\(s\) kind not in the header"),
        ("a,b,kind\n1,nan,x\n2,3,y\n", r"x.csv:2: column 'b': expected a finite number"),
        ("", "the file is empty"),
        ("a,b,kind\n1,2,x\n3,4,x\n", "expected at least 2 classes"),
    ],
)
def test_csv_errors_name_file_row_and_column(tmp_path, content, match):
    (tmp_path / "x.csv").write_text(content)
    spec = write_spec(tmp_path, "{csv: x.csv, target: kind}")
    with pytest.raises(DataError, match=match):
        pipeline.load_data(spec)


def test_npz_data_and_object_arrays_rejected(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 3))
    np.savez(tmp_path / "ok.npz", x=x, y=np.arange(30) % 2)
    spec = write_spec(tmp_path, "{npz: ok.npz}")
    ds = pipeline.load_data(spec)
    assert ds.x.shape == (30, 3) and ds.info.class_names == ["0", "1"]
    np.savez(tmp_path / "bad.npz", x=np.array([{"a": 1}] * 30, dtype=object), y=np.zeros(30))
    with pytest.raises(DataError, match="without pickle"):
        pipeline.load_data(write_spec(tmp_path, "{npz: bad.npz}"))
    with pytest.raises(DataError, match="no array 'z'"):
        pipeline.load_data(write_spec(tmp_path, "{npz: ok.npz, x: z}"))


def test_missing_data_file(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        pipeline.load_data(write_spec(tmp_path, "{csv: nope.csv, target: y}"))


def test_split_is_deterministic_and_stratified():
    y = np.repeat([0, 1, 2], [40, 20, 10])
    a = data.split(70, y, 0.2, np.random.default_rng([5, 1]))
    b = data.split(70, y, 0.2, np.random.default_rng([5, 1]))
    np.testing.assert_array_equal(a[1], b[1])
    assert np.bincount(y[a[1]]).tolist() == [8, 4, 2]
    assert len(np.intersect1d(a[0], a[1])) == 0 and len(a[0]) + len(a[1]) == 70


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"x": np.zeros((4, 2)), "y": np.array([1.0, np.nan, 0, 1])}, r"'y' has a NaN or inf at"),
        ({"x": np.zeros((4, 2)), "y": np.array(["a", "b", "c", "d"])}, "expected numeric"),
        (
            {"x": np.zeros((4, 2)), "y": np.array(3.0)},
            r"expected 4 targets like 'x', got shape \(\)",
        ),
    ],
)
def test_npz_regression_targets_are_checked(tmp_path, arrays, match):
    np.savez(tmp_path / "d.npz", **arrays)
    spec = write_spec(tmp_path, "{npz: d.npz}", "regression", 1, "identity", "mse")
    with pytest.raises(DataError, match=match):
        pipeline.load_data(spec)


def test_npy_or_csv_given_as_npz(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 2)))
    with pytest.raises(DataError, match="a single .npy array, not an .npz archive"):
        pipeline.load_data(write_spec(tmp_path, "{npz: a.npy}"))
    (tmp_path / "b.npz").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a readable .npz archive"):
        pipeline.load_data(write_spec(tmp_path, "{npz: b.npz}"))
