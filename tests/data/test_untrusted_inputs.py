"""Data files from others through ``nnspec.untrusted``: special files refused without a hang,
sizes and headers checked before anything is decompressed or allocated (memory is measured:
at most twice the honest size of the work), numbers in ASCII within float32's range, and
prediction CSVs that a spreadsheet cannot run."""

from __future__ import annotations

import io
import os
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest
from conftest import ROOT

import nnspec
from nnspec import cli, untrusted
from nnspec.data import csv_table
from nnspec.data.predict_inputs import spreadsheet_safe, write_predictions
from nnspec.errors import DataError

SPEC = (
    "spec_version: 1\nname: t\ntask: classification\ndata: {npz: d.npz}\n"
    "layers:\n  - {kind: dense, units: 2, activation: softmax}\nloss: cross_entropy\n"
)


def peak(fn) -> tuple[object, int]:
    """(what ``fn()`` returned or raised, the peak bytes Python and NumPy allocated in it)."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001  the caller looks at it
            out = e
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def zeros_npz(path, mb: int, piece: int = 2**20) -> None:
    """An NPZ whose 'x' is ``mb`` pieces (1 MB) of deflated zeros, written piece by piece
    (cheap), and 'y' a few labels: ~1,000:1, a decompression bomb."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (mb * piece // 8, 1)}
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            block = bytes(piece)
            for _ in range(mb):
                f.write(block)
        y = io.BytesIO()
        np.save(y, np.arange(4) % 2)
        z.writestr("y.npy", y.getvalue())


# --- special files ---------------------------------------------------------------------------


def _within(seconds: float, fn):
    out = []
    t = threading.Thread(target=lambda: out.append(peak(fn)[0]), daemon=True)
    t.start()
    t.join(seconds)
    assert out, f"still blocked after {seconds} s"
    return out[0]


def test_a_fifo_is_refused_before_it_is_opened(tmp_path):
    fifo = tmp_path / "d.csv"
    os.mkfifo(fifo)
    for fn in (
        lambda: untrusted.read_bytes(fifo),
        lambda: csv_table.read(fifo),
        lambda: untrusted.read_npy(fifo),
        lambda: untrusted.read_npz(fifo),
    ):
        e = _within(10, fn)
        assert isinstance(e, DataError) and "FIFO (named pipe), which would block" in str(e)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused(path):
    with pytest.raises(DataError, match="is a character device; expected a regular file"):
        untrusted.read_bytes(path)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        untrusted.open_regular(tmp_path)


def test_sizes_are_checked_before_reading(tmp_path):
    (tmp_path / "f").write_bytes(bytes(2000))
    with pytest.raises(DataError, match="is 2.0 KB; expected at most 1.0 KB"):
        untrusted.read_bytes(tmp_path / "f", limit=1000)
    assert len(untrusted.read_bytes(tmp_path / "f", limit=2000)) == 2000


@pytest.mark.parametrize("device", ["/dev/zero", "fifo"])
def test_predict_on_a_special_input_is_a_clear_error(tmp_path, capfd, device):
    model = tmp_path / "m.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "iris.yaml")), model)
    if device == "fifo":
        device = tmp_path / "x.csv"
        os.mkfifo(device)
    rc = _within(30, lambda: cli.main(["predict", str(model), str(device)]))
    err = capfd.readouterr().err
    assert rc == 2 and "expected a regular data file" in err and "Traceback" not in err


# --- NPZ and .npy: checked before decompressing or allocating --------------------------------


def test_a_deflate_bomb_is_refused_before_decompressing(tmp_path, capfd):
    zeros_npz(tmp_path / "d.npz", 64)
    size = (tmp_path / "d.npz").stat().st_size
    assert size < 2**20  # 64 MB of zeros in well under 1 MB
    (tmp_path / "s.yaml").write_text(SPEC)
    rc, used = peak(lambda: cli.main(["validate", str(tmp_path / "s.yaml")]))
    err = capfd.readouterr().err
    assert rc == 2 and "a decompression bomb; refused before decompressing" in err, err
    assert used < 2 * size + 2**21, used  # nothing of the 64 MB


def test_only_the_arrays_asked_for_are_decompressed(tmp_path):
    zeros_npz(tmp_path / "d.npz", 1, 2**19)  # under the ratio floor: a harmless archive
    arrays, used = peak(lambda: untrusted.read_npz(tmp_path / "d.npz", keys=["y"]))
    assert list(arrays) == ["y"] and used < 2**19


def test_entries_are_checked_by_name_before_decompressing(tmp_path, monkeypatch):
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.ones(3), y=np.ones(3))
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        assert z.namelist() == ["x.npy", "y.npy"]
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("evil.npy", b"x" * 100, compress_type=zipfile.ZIP_DEFLATED)
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(
        zipfile.ZipFile,
        "open",
        lambda self, name, *a, **k: opened.append(name) or real_open(self, name, *a, **k),
    )
    with pytest.raises(DataError, match="unexpected array 'evil'"):
        untrusted.read_npz(out.getvalue(), "c.npz", allowed=lambda k: k in ("x", "y"))
    assert opened == []


def test_a_npy_header_that_claims_more_than_the_file_holds_is_refused(tmp_path, capfd):
    path = tmp_path / "x.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 4)}
        )
    assert path.stat().st_size < 200
    e, used = peak(lambda: untrusted.read_npy(path))
    assert isinstance(e, DataError) and "claims float64 of shape (100000000000, 4)" in str(e)
    assert used < 2**20
    model = tmp_path / "m.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "iris.yaml")), model)
    assert cli.main(["predict", str(model), str(path)]) == 2
    assert "truncated or damaged" in capfd.readouterr().err


def test_an_object_npy_is_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="cannot load without pickle"):
        untrusted.read_npy(tmp_path / "o.npy")


def test_an_honest_npy_round_trips(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "f.npy", np.asfortranarray(a))
    np.testing.assert_array_equal(untrusted.read_npy(tmp_path / "a.npy"), a)
    np.testing.assert_array_equal(untrusted.read_npy(tmp_path / "f.npy"), a)


# --- CSV: one enormous line -------------------------------------------------------------------


def test_a_huge_csv_line_is_refused_within_twice_its_size(tmp_path):
    path = tmp_path / "d.csv"
    line = "1," * (4 * 2**20) + "1\n"  # 8 MB: 4 million cells, were it split
    path.write_text("a,b,target\n1,2,x\n" + line)
    size = path.stat().st_size
    e, used = peak(lambda: csv_table.read(path))
    assert isinstance(e, DataError), e
    assert "d.csv:3: expected 3 cells like the header, got 4,194,305" in str(e)
    assert used < 2 * size + 2**20, (used, size)


def test_a_huge_quoted_line_is_refused_too(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('a,b\n"x,y",' + "1," * 2**17 + '"\n')
    with pytest.raises(DataError, match=r"d.csv:2: expected 2 cells like the header, got at least"):
        csv_table.read(path)


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["5_1", "\u0665", "1e39", "-3.5e38"])
def test_numbers_are_ascii_decimal_in_float32_range(cell):
    text = f"a,b\n1,{cell}\n"
    with pytest.raises(DataError, match="t.csv:2: column 'b'"):
        csv_table.parse(text, "t.csv").numbers([0, 1])


def test_ordinary_numbers_still_read():
    table = csv_table.parse("a,b\n-1.5e3,+2\n.5,3.\n", "t.csv")
    np.testing.assert_array_equal(table.numbers([0, 1]), [[-1500, 2], [0.5, 3]])


def test_npz_data_beyond_float32_is_refused(tmp_path, capfd):
    np.savez(tmp_path / "d.npz", x=np.array([[1.0], [1e39], [2.0], [3.0]]), y=np.arange(4) % 2)
    (tmp_path / "s.yaml").write_text(SPEC)
    assert cli.main(["validate", str(tmp_path / "s.yaml")]) == 2
    assert "array 'x' has a value beyond float32's range" in capfd.readouterr().err


def test_json_values_have_limits():
    with pytest.raises(DataError, match="nested too deep|nested over"):
        untrusted.parse_json("[" * 100_000 + "]" * 100_000, "m")
    for text in ("NaN", "[1e400]", '{"a": Infinity}'):
        with pytest.raises(DataError, match="not usable JSON"):
            untrusted.parse_json(text, "m")
    assert untrusted.parse_int("12", "n", lo=0) == 12
    for bad in ("abc", "1_2", "\u0661", True, 1.5):
        with pytest.raises(DataError, match="expected an integer"):
            untrusted.parse_int(bad, "n")


# --- prediction CSVs that a spreadsheet cannot run --------------------------------------------


@pytest.mark.parametrize(
    "name, shown",
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-1", "-1"),
        ("setosa", "setosa"),
    ],
)
def test_text_cells_that_look_like_formulas_are_neutralised(name, shown):
    assert spreadsheet_safe(name) == shown


def test_predictions_of_a_model_with_formula_class_names(tmp_path):
    from nnspec_runtime.model import Prediction

    pred = Prediction(
        "classification",
        probabilities=np.array([[0.9, 0.1]]),
        label_indices=np.array([0]),
        labels=np.array(['=HYPERLINK("x")'], dtype=object),
        class_names=['=HYPERLINK("x")', "b"],
    )
    text = write_predictions(pred)
    assert text.splitlines()[1].startswith('"\'=HYPERLINK(""x"")",0.9')


def test_a_fifo_as_parquet_input_is_refused(tmp_path):
    pytest.importorskip("pyarrow")
    from nnspec.data.predict_inputs import read_columns

    os.mkfifo(tmp_path / "x.parquet")
    e = _within(10, lambda: read_columns(tmp_path / "x.parquet", ["a"]))
    assert isinstance(e, DataError) and "FIFO (named pipe)" in str(e)


@pytest.mark.parametrize("cell", ["1e39", "-3.5e38"])
def test_csv_file_beyond_float32_is_refused_on_the_fast_path_too(tmp_path, cell):
    """np.loadtxt reads 1e39 as a finite float64: the fast path hands such a file to the
    located reader, which refuses it with the row and column."""
    from nnspec.data import fast_csv

    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "1,2\n" * 5 + f"1,{cell}\n")
    assert fast_csv.read_numeric(path) is None
    path.write_text("a,b\n" + "1,2\n" * 5 + "1,3e38\n")
    assert fast_csv.read_numeric(path) is not None


def test_idx_fifo_is_refused_without_blocking(tmp_path):
    from nnspec.data import idx

    fifo = tmp_path / "images.idx"
    os.mkfifo(fifo)
    result: list = []
    t = threading.Thread(target=lambda: result.append(_raises(idx.read_idx, fifo, "images")))
    t.start()
    t.join(10)
    assert not t.is_alive(), "reading an IDX FIFO blocked"
    assert result and "is a FIFO (named pipe), which would block" in result[0], result


def _raises(fn, *args) -> str:
    try:
        fn(*args)
    except DataError as e:
        return str(e)
    return "no error"
