"""IDX and Parquet sources, fixed test/validation parts, and the mnist5k built-in."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest

import nnspec
from nnspec import pipeline
from nnspec.data import core as data
from nnspec.data.idx import read_idx
from nnspec.errors import DataError, SpecError


def write_idx(path, a, code=0x08, gz=None):
    a = np.asarray(a)
    raw = struct.pack(">BBBB", 0, 0, code, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    raw += a.astype(a.dtype.newbyteorder(">")).tobytes()
    gz = path.suffix == ".gz" if gz is None else gz
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def spec_file(tmp_path, data_line, task="classification", extra="", epochs=2):
    path = tmp_path / "spec.yaml"
    out = (
        "{kind: dense, units: auto, activation: softmax}"
        if task == "classification"
        else ("{kind: dense, units: auto}")
    )
    path.write_text(
        f"spec_version: 1\nname: t\ntask: {task}\ndata: {data_line}\nlayers:\n"
        "  - {kind: dense, units: 8, activation: tanh}\n"
        f"  - {out}\n"
        f"loss: {'cross_entropy' if task == 'classification' else 'mse'}\n"
        f"train: {{epochs: {epochs}, batch_size: 8{extra}}}\n"
    )
    return path


@pytest.fixture(scope="module")
def mnist():
    ds = data.load_builtin("mnist5k", task="classification")
    return ds.x.reshape(-1, 28, 28).astype(np.uint8), ds.y.astype(np.uint8)


def test_mnist5k_is_real_mnist_500_per_class(mnist):
    x, y = mnist
    assert x.shape == (5000, 28, 28) and np.bincount(y).tolist() == [500] * 10
    assert x.max() == 255 and x.min() == 0
    info = pipeline.data_info(nnspec.load_spec(spec_file_text("{builtin: mnist5k}")))
    assert info.shape == (1, 28, 28) and info.outputs == 10


def spec_file_text(data_line):
    return (
        f"spec_version: 1\nname: t\ntask: classification\ndata: {data_line}\nlayers:\n"
        "  - {kind: dense, units: auto, activation: softmax}\nloss: cross_entropy\n"
    )


def test_idx_pair_with_a_fixed_test_pair(tmp_path, mnist):
    x, y = mnist
    order = np.random.default_rng(0).permutation(len(x))  # mnist_5k is sorted by class
    x, y = x[order], y[order]
    write_idx(tmp_path / "tr-img.gz", x[:600])
    write_idx(tmp_path / "tr-lab.gz", y[:600])
    write_idx(tmp_path / "te-img", x[600:700])
    write_idx(tmp_path / "te-lab", y[600:700])
    line = (
        "{idx: {images: tr-img.gz, labels: tr-lab.gz}, "
        "test: {idx: {images: te-img, labels: te-lab}}}"
    )
    spec = nnspec.load_spec(spec_file(tmp_path, line))
    parts = pipeline.load_parts(spec)
    assert parts.train.x.shape == (600, 784) and parts.train.info.shape == (1, 28, 28)
    np.testing.assert_array_equal(parts.train.x[3], x[3].reshape(-1))
    result = nnspec.train(spec)
    assert len(result.splits.train.x) == 600 and len(result.splits.test.x) == 100
    np.testing.assert_array_equal(result.splits.test.y, y[600:700])


@pytest.mark.parametrize(
    "code,dtype",
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
def test_every_idx_type_reads_back(tmp_path, code, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if code == 0x08:
        a = np.abs(a).astype(dtype)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a", a, code), "images"), a)


def test_malformed_idx_files_are_located(tmp_path, mnist):
    x, y = mnist
    img = write_idx(tmp_path / "img", x[:10])
    write_idx(tmp_path / "lab", y[:10])
    (tmp_path / "short").write_bytes(img.read_bytes()[:-7])
    (tmp_path / "magic").write_bytes(b"\x12\x34" + img.read_bytes()[2:])
    (tmp_path / "trunc.gz").write_bytes(gzip.compress(img.read_bytes())[:-20])
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    write_idx(tmp_path / "lab9", y[:9])
    cases = {
        ("short", "lab"): r"short: the header says 10×28×28 values of uint8 \(7,840 bytes\), "
        r"but the file holds 7,833 bytes after the header; truncated\?",
        ("magic", "lab"): r"magic: not an IDX file: magic number 0x12340803",
        ("trunc.gz", "lab"): r"trunc.gz: (truncated|damaged) gzip",
        ("tiny", "lab"): r"tiny: 2 bytes; expected an IDX file",
        ("img", "lab9"): r"lab9: 9 labels, but .*img holds 10 images",
        ("lab", "lab"): r"lab: expected images of shape \(samples, height, width\)",
        ("nope", "lab"): r"nope: data file not found",
        (".", "lab"): r": is a directory; expected a regular IDX file",
    }
    for (images, labels), message in cases.items():
        with pytest.raises(DataError, match=message):
            data.load_idx(tmp_path / images, tmp_path / labels, "classification")


def test_idx_errors_exit_2_on_the_command_line(tmp_path, mnist):
    x, y = mnist
    write_idx(tmp_path / "img", x[:10])
    write_idx(tmp_path / "lab", y[:12])
    path = spec_file(tmp_path, "{idx: {images: img, labels: lab}}")
    p = subprocess.run(
        [sys.executable, "-m", "nnspec", "train", str(path), "-o", str(tmp_path / "m.onnx")],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "12 labels, but" in p.stderr and not (tmp_path / "m.onnx").exists()


def test_csv_and_npz_take_fixed_test_and_validation_parts(tmp_path):
    iris = data.load_builtin("iris", task="classification")
    names = np.array(data.BUILTIN_INFO["iris"].class_names)

    def csv(name, idx):
        rows = ["a,b,c,d,species"] + [
            ",".join(map(str, r)) + f",{names[c]}"
            for r, c in zip(iris.x[idx], iris.y[idx], strict=True)
        ]
        (tmp_path / name).write_text("\n".join(rows) + "\n")

    csv("train.csv", np.arange(0, 150, 2))
    csv("val.csv", np.arange(1, 150, 4))
    csv("test.csv", np.arange(3, 150, 4))
    line = "{csv: train.csv, target: species, validation: {csv: val.csv}, test: {csv: test.csv}}"
    result = nnspec.train(spec_file(tmp_path, line))
    assert [len(result.splits.train.x), len(result.splits.val.x), len(result.splits.test.x)] == [
        75,
        38,
        37,
    ]
    np.testing.assert_array_equal(result.splits.test.y, iris.y[3::4])
    np.savez(tmp_path / "tr.npz", x=iris.x[::2], y=iris.y[::2])
    np.savez(tmp_path / "te.npz", x=iris.x[1::2], y=iris.y[1::2])
    result = nnspec.train(spec_file(tmp_path, "{npz: tr.npz, test: {npz: te.npz}}"))
    assert len(result.splits.test.x) == 75
    np.savez(tmp_path / "bad.npz", x=iris.x[:5, :3], y=iris.y[:5])
    with pytest.raises(DataError, match=r"test data .*bad.npz\): has 3 features per sample"):
        nnspec.train(spec_file(tmp_path, "{npz: tr.npz, test: {npz: bad.npz}}"))


def test_a_fixed_test_part_and_test_fraction_conflict(tmp_path):
    from nnspec.spec.rules import check_rules

    spec = nnspec.load_spec(
        spec_file(tmp_path, "{npz: a.npz, test_fraction: 0.3, test: {npz: b.npz}}")
    )
    with pytest.raises(SpecError, match=r"data.test_fraction: test and test_fraction both given"):
        check_rules(spec, None)
    with pytest.raises(SpecError, match=r"data.test.csv: unknown key 'csv'"):
        nnspec.load_spec(spec_file(tmp_path, "{npz: a.npz, test: {csv: b.csv}}"))


def test_fixed_validation_satisfies_early_stopping(tmp_path):
    iris = data.load_builtin("iris", task="classification")
    np.savez(tmp_path / "tr.npz", x=iris.x[::2], y=iris.y[::2])
    np.savez(tmp_path / "va.npz", x=iris.x[1::2], y=iris.y[1::2])
    extra = ", early_stopping: {patience: 2}"
    result = nnspec.train(
        spec_file(tmp_path, "{npz: tr.npz, validation: {npz: va.npz}}", extra=extra)
    )
    assert len(result.splits.val.x) == 75 and "val_loss" in result.history.epochs[-1]


# --- Parquet ---------------------------------------------------------------------------------


@pytest.fixture
def parquet_dir(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    iris = data.load_builtin("iris", task="classification")
    names = np.array(data.BUILTIN_INFO["iris"].class_names)
    cols = {f"f{i}": iris.x[:, i] for i in range(4)}
    table = pa.table({**cols, "species": names[iris.y].tolist()})
    pq.write_table(table.slice(0, 75), tmp_path / "part-0.parquet")
    pq.write_table(table.slice(75), tmp_path / "part-1.parquet")
    pq.write_table(table.take(list(range(0, 150, 5))), tmp_path / "test.parquet")
    return tmp_path, table, pq, pa


def test_parquet_glob_with_features_and_a_fixed_test(parquet_dir):
    tmp_path, table, pq, pa = parquet_dir
    line = (
        "{parquet: 'part-*.parquet', target: species, features: [f3, f2], "
        "test: {parquet: test.parquet}}"
    )
    spec = nnspec.load_spec(spec_file(tmp_path, line, epochs=30))
    parts = pipeline.load_parts(spec)
    assert parts.train.x.shape == (150, 2) and parts.train.info.feature_names == ["f3", "f2"]
    assert parts.train.info.class_names == ["setosa", "versicolor", "virginica"]
    result = nnspec.train(spec)
    assert len(result.splits.test.x) == 30 and result.metrics["accuracy"] > 0.8


def test_parquet_regression_with_two_targets(parquet_dir):
    tmp_path, *_ = parquet_dir
    spec = spec_file(
        tmp_path,
        "{parquet: part-0.parquet, target: [f0, f1], features: [f2, f3]}",
        task="regression",
    )
    ds = pipeline.load_data(nnspec.load_spec(spec))
    assert ds.y.shape == (75, 2) and ds.info.target_names == ["f0", "f1"]


def test_bad_parquet_is_located(parquet_dir):
    tmp_path, table, pq, pa = parquet_dir
    (tmp_path / "text.parquet").write_text("a,b\n1,2\n")
    (tmp_path / "empty.parquet").write_bytes(b"")
    whole = (tmp_path / "test.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(whole[: len(whole) // 2])
    pq.write_table(pa.table({"f0": [1.0, None], "species": ["a", "b"]}), tmp_path / "null.parquet")
    pq.write_table(pa.table({"f0": ["1", "2"], "species": ["a", "b"]}), tmp_path / "str.parquet")
    pq.write_table(pa.table({"f0": [1, 2], "species": ["a", "b"]}), tmp_path / "other-0.parquet")
    pq.write_table(pa.table({"f0": [1.5, 2], "species": ["a", "b"]}), tmp_path / "other-1.parquet")
    cases = {
        "text.parquet": r"text.parquet: not a readable Parquet file",
        "null.parquet": r"null.parquet: column 'f0' has a missing value \(null\) at row 1",
        "str.parquet": r"str.parquet: column 'f0': expected numbers, got string",
        "none-*.parquet": r"none-\*.parquet: no file matches this pattern",
        "missing.parquet": r"missing.parquet: data file not found",
        "empty.parquet": r"empty.parquet: the file is empty; expected a Parquet file",
        "cut.parquet": r"cut.parquet: not a readable Parquet file",
        "other-*.parquet": r"other-1.parquet: its columns .* differ from the first file's",
    }
    for name, message in cases.items():
        spec = nnspec.load_spec(spec_file(tmp_path, f"{{parquet: '{name}', target: species}}"))
        with pytest.raises(DataError, match=message):
            pipeline.load_data(spec)
    spec = nnspec.load_spec(spec_file(tmp_path, "{parquet: test.parquet, target: kind}"))
    with pytest.raises(DataError, match=r"column\(s\) kind not in the file; the columns are: f0"):
        pipeline.load_data(spec)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    spec = nnspec.load_spec(spec_file(tmp_path, "{parquet: x.parquet, target: y}"))
    with pytest.raises(DataError, match=r'pip install "nnspec\[parquet\]"'):
        pipeline.load_data(spec)


def test_a_tabular_spec_reads_parquet_with_a_fixed_test_file(tmp_path):
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from conftest import ROOT

    df = pd.read_csv(ROOT / "nnspec" / "data" / "datasets" / "penguins.csv")
    pq.write_table(
        pa.Table.from_pandas(df.iloc[::2], preserve_index=False), tmp_path / "a.pq.parquet"
    )
    pq.write_table(
        pa.Table.from_pandas(df.iloc[1::2], preserve_index=False), tmp_path / "b.parquet"
    )
    text = (ROOT / "specs" / "penguins.yaml").read_text()
    text = text.replace(
        "  csv: ../nnspec/data/datasets/penguins.csv\n",
        "  parquet: a.pq.parquet\n  test: {parquet: b.parquet}\n",
    )
    (tmp_path / "s.yaml").write_text(text.replace("  test_fraction: 0.25\n", ""))
    result = nnspec.train(tmp_path / "s.yaml")
    assert len(result.splits.test.x) == 172 and result.metrics["accuracy"] > 0.9
    assert result.network.tabular is not None
    nnspec.export(result, tmp_path / "m.onnx")
