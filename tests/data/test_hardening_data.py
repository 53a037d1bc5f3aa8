"""Hostile and malformed data files: every one is a located DataError (file, line and column,
or array and index), exit code 2 from ``nnspec train`` with no traceback, and nothing written.

Also labels that a split would put only in the test or validation part, and the inputs of
``nnspec predict``.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec import cli, pipeline
from nnspec.data import core as data
from nnspec.errors import DataError, SpecError

CLASSIFY = (
    "layers:\n"
    "  - {kind: dense, units: 4, activation: tanh}\n"
    "  - {kind: dense, units: 2, activation: softmax}\n"
    "loss: cross_entropy\n"
)
REGRESS = (
    "layers:\n"
    "  - {kind: dense, units: 4, activation: tanh}\n"
    "  - {kind: dense, units: 1, activation: identity}\n"
    "loss: mse\n"
)


def write_spec(tmp_path, data_line: str, task: str = "classification", train: str = "") -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(
        f"spec_version: 1\nname: t\ntask: {task}\ndata: {data_line}\n"
        + (CLASSIFY if task == "classification" else REGRESS)
        + f"train: {{epochs: 2, batch_size: 4{train}}}\n"
    )
    return str(path)


def train_fails(tmp_path, capsys, spec: str) -> str:
    """Run ``nnspec train`` in-process: exit code 2, one clean message, no model written."""
    out = tmp_path / "out.onnx"
    rc = cli.main(["train", spec, "-o", str(out), "--metrics", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and err.strip()
    assert not out.exists() and not (tmp_path / "m.json").exists()
    return err


def rows(n: int = 12) -> list[str]:
    """CSV data rows (line 2 onwards) of two features and two classes."""
    return [f"{i},{i % 3},{'x' if i % 2 else 'y'}" for i in range(n)]


def csv_with(tmp_path, header: str, body: list[str]) -> None:
    (tmp_path / "d.csv").write_text("\n".join([header, *body]) + "\n")


# --- CSV ------------------------------------------------------------------------------------


def _bad_row(row: str) -> list[str]:
    """Twelve good rows with ``row`` as the fourth (line 5 of the file)."""
    body = rows()
    body.insert(3, row)
    return body


@pytest.mark.parametrize(
    "row,message",
    [
        ("3,,x", "d.csv:5: column 'b': expected a number, got an empty cell (a missing value?)"),
        ("3,  ,x", "d.csv:5: column 'b': expected a number, got an empty cell"),
        (",4,x", "d.csv:5: column 'a': expected a number, got an empty cell"),
        ("3,four,x", "d.csv:5: column 'b': expected a number, got 'four'"),
        ("3,1.2.3,x", "d.csv:5: column 'b': expected a number, got '1.2.3'"),
        ("3,nan,x", "d.csv:5: column 'b': expected a finite number, got nan"),
        ("3,NaN,x", "d.csv:5: column 'b': expected a finite number, got NaN"),
        ("inf,4,x", "d.csv:5: column 'a': expected a finite number, got inf"),
        ("3,-Infinity,x", "d.csv:5: column 'b': expected a finite number, got -Infinity"),
        ("3,1e999,x", "d.csv:5: column 'b': expected a finite number, got 1e999"),
        ("3,4", "d.csv:5: expected 3 cells like the header, got 2 (no cell for column(s) kind)"),
        ("3", "d.csv:5: expected 3 cells like the header, got 1 (no cell for column(s) b, kind)"),
        ("3,4,x,9", "d.csv:5: expected 3 cells like the header, got 4 (1 more than the header"),
        ("3,4,", "d.csv:5: column 'kind': expected a class label, got an empty cell"),
        ("3,4,  ", "d.csv:5: column 'kind': expected a class label, got an empty cell"),
        ("3,4,nan", "d.csv:5: column 'kind': expected a class label, got 'nan', a NaN or inf"),
        ("3,4,-inf", "d.csv:5: column 'kind': expected a class label, got '-inf', a NaN or inf"),
    ],
)
def test_csv_cell_errors_name_file_line_and_column(tmp_path, capsys, row, message):
    csv_with(tmp_path, "a,b,kind", _bad_row(row))
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{csv: d.csv, target: kind}"))
    assert message in err
    assert str(tmp_path / "d.csv") in err  # the full path, not just the name


@pytest.mark.parametrize(
    "row,message",
    [
        ("3,", "d.csv:5: column 'y': expected a number, got an empty cell"),
        ("3,nan", "d.csv:5: column 'y': expected a finite number, got nan"),
        ("3,Infinity", "d.csv:5: column 'y': expected a finite number, got Infinity"),
        ("3,high", "d.csv:5: column 'y': expected a number, got 'high'"),
    ],
)
def test_csv_regression_target_errors(tmp_path, capsys, row, message):
    body = [f"{i},{2 * i}" for i in range(12)]
    body.insert(3, row)
    csv_with(tmp_path, "x,y", body)
    err = train_fails(
        tmp_path, capsys, write_spec(tmp_path, "{csv: d.csv, target: y}", "regression")
    )
    assert message in err


@pytest.mark.parametrize(
    "header,target,message",
    [
        ("a,b,label", "kind", "d.csv:1: column(s) kind not in the header; the columns are: a, b,"),
        ("a,b,Kind", "kind", "column(s) kind not in the header"),
        (
            "a,a,kind",
            "kind",
            "d.csv:1: column name 'a' appears 2 times in the header (columns 1, 2)",
        ),
        (",b,kind", "kind", "d.csv:1: column 1 has no name in the header"),
    ],
)
def test_csv_header_errors(tmp_path, capsys, header, target, message):
    csv_with(tmp_path, header, rows())
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, f"{{csv: d.csv, target: {target}}}"))
    assert message in err


def test_duplicate_columns_were_silently_read_twice(tmp_path):
    """Without the check, both 'a' features were read from the first 'a' column."""
    csv_with(tmp_path, "a,a,kind", rows())
    with pytest.raises(DataError, match="appears 2 times"):
        data.load_csv(tmp_path / "d.csv", "kind", None, "classification")


def test_csv_line_numbers_count_blank_lines_and_multiline_cells(tmp_path, capsys):
    # Line 1 blank, header on line 2, a quoted label over lines 4-5, the bad cell on line 7.
    text = '\na,b,kind\n1,2,x\n3,4,"y\nz"\n5,6,x\n7,oops,y\n'
    (tmp_path / "d.csv").write_text(text)
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{csv: d.csv, target: kind}"))
    assert "d.csv:7: column 'b': expected a number, got 'oops'" in err


def test_csv_syntax_errors_are_located(tmp_path, capsys):
    body = rows()
    body.insert(2, '1,"' + "9" * 200_000 + '",x')  # over the csv module's field size limit
    csv_with(tmp_path, "a,b,kind", body)
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{csv: d.csv, target: kind}"))
    assert "d.csv:4: cannot parse as CSV: field larger than field limit" in err


def test_csv_without_data_rows_or_bytes(tmp_path, capsys):
    csv_with(tmp_path, "a,b,kind", [])
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{csv: d.csv, target: kind}"))
    assert "d.csv: no data rows after the header" in err
    (tmp_path / "d.csv").write_bytes(b"a,b,kind\n1,2,\xff\n")
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{csv: d.csv, target: kind}"))
    assert "d.csv: cannot read as UTF-8 CSV text" in err


# --- NPZ ------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates a file: proof that a data file ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("key", ["x", "y"])
def test_npz_object_arrays_are_refused_without_unpickling(tmp_path, capsys, key):
    marker = tmp_path / "pwned"
    evil = np.empty(10, dtype=object)
    evil[:] = [_Payload(str(marker))] * 10
    arrays = {"x": np.zeros((10, 2)), "y": np.arange(10) % 2}
    arrays[key] = evil if key == "y" else evil.reshape(10, 1)
    np.savez(tmp_path / "d.npz", **arrays)
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{npz: d.npz}"))
    assert f"d.npz: array '{key}': cannot load without pickle: it is an object array" in err
    assert not marker.exists()


def test_a_pickle_given_as_npz_is_not_unpickled(tmp_path, capsys):
    import pickle

    marker = tmp_path / "pwned"
    (tmp_path / "d.npz").write_bytes(pickle.dumps(_Payload(str(marker))))
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{npz: d.npz}"))
    assert "d.npz: not a readable .npz archive" in err
    assert not marker.exists()


def _npz_case(x=None, y=None, n=10):
    x = np.random.default_rng(0).normal(size=(n, 2)) if x is None else x
    y = (np.arange(n) % 2) if y is None else y
    return {"x": x, "y": y}


@pytest.mark.parametrize(
    "arrays,message",
    [
        (_npz_case(x=np.zeros(10)), "array 'x': expected numbers of shape (samples, features)"),
        (_npz_case(x=np.zeros((10, 1, 1, 1, 1))), "got float64 of shape (10, 1, 1, 1, 1)"),
        (_npz_case(x=np.zeros((0, 2)), y=np.zeros(0)), "array 'x' of shape (0, 2) is empty"),
        (_npz_case(x=np.zeros((10, 0))), "'x' of shape (10, 0) is empty; expected at least one"),
        (
            _npz_case(x=np.full((10, 2), "a")),
            "array 'x': expected real numbers, got <U1 (strings",
        ),
        (
            _npz_case(x=np.ones((10, 2), complex)),
            "array 'x': expected real numbers, got complex128 (complex numbers",
        ),
        (
            _npz_case(x=np.ones((10, 2), "m8[s]")),
            "array 'x': expected real numbers, got timedelta64[s] (time spans",
        ),
        (
            _npz_case(x=np.ones((10, 2), "M8[D]")),
            "array 'x': expected real numbers, got datetime64[D] (dates",
        ),
        (
            _npz_case(x=np.zeros(10, dtype=[("a", "f8"), ("b", "f8")]).reshape(10, 1)),
            "array 'x': expected real numbers",
        ),
        (
            _npz_case(x=np.where(np.eye(10, 2) > 0, np.nan, 1.0)),
            "array 'x' has a NaN or inf at index (0, 0); expected finite numbers",
        ),
        (
            _npz_case(x=np.where(np.arange(20).reshape(10, 2) == 13, -np.inf, 1.0)),
            "array 'x' has a NaN or inf at index (6, 1)",
        ),
        (_npz_case(y=np.arange(9) % 2), "array 'y': expected 10 targets like 'x', got shape (9,)"),
        (_npz_case(y=np.array(1)), "array 'y': expected 10 targets like 'x', got shape ()"),
        (
            _npz_case(y=np.zeros((10, 2))),
            "array 'y': expected class labels of shape (samples,), got shape (10, 2)",
        ),
        (
            _npz_case(y=np.where(np.arange(10) == 4, np.nan, np.arange(10) % 2)),
            "array 'y' at index 4: expected a class label, got 'nan', a NaN or inf",
        ),
        (
            _npz_case(y=np.array(["a", "b", "", "a", "b", "a", "b", "a", "b", "a"])),
            "array 'y' at index 2: expected a class label, got an empty cell",
        ),
        (
            _npz_case(y=np.ones(10, complex)),
            "array 'y': expected class labels (integers or strings), got complex128",
        ),
    ],
)
def test_npz_shape_and_dtype_errors_name_array_and_index(tmp_path, capsys, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{npz: d.npz}"))
    assert message in err and str(tmp_path / "d.npz") in err


@pytest.mark.parametrize(
    "y,message",
    [
        (np.ones(10, complex), "array 'y': expected numeric regression targets, got complex128"),
        (np.ones(10, "m8[s]"), "got timedelta64[s] (time spans"),
        (np.zeros((10, 0)), "array 'y': no target values (shape (10, 0))"),
        (np.where(np.arange(10) == 7, np.inf, 0.0), "array 'y' has a NaN or inf at index (7, 0)"),
    ],
)
def test_npz_regression_target_errors(tmp_path, capsys, y, message):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 2)), y=y)
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{npz: d.npz}", "regression"))
    assert message in err


def test_npz_bool_features_are_zeros_and_ones(tmp_path):
    x = np.arange(20).reshape(10, 2) % 3 == 0
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10) % 2)
    ds = data.load_npz(tmp_path / "d.npz", "x", "y", "classification")
    np.testing.assert_array_equal(ds.x, x.astype(np.float64))


def test_damaged_npz_archives(tmp_path, capsys):
    np.savez(tmp_path / "ok.npz", **_npz_case(n=200))
    whole = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(whole[: len(whole) // 2])
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{npz: d.npz}"))
    assert "d.npz: not a readable .npz archive" in err
    flipped = bytearray(whole)
    flipped[len(whole) // 4] ^= 0xFF  # inside x's bytes: the zip CRC catches it
    (tmp_path / "d.npz").write_bytes(bytes(flipped))
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{npz: d.npz}"))
    assert "d.npz: array 'x': damaged in the archive" in err


def test_npz_without_the_named_arrays(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", a=np.zeros((10, 2)), b=np.zeros(10))
    err = train_fails(tmp_path, capsys, write_spec(tmp_path, "{npz: d.npz}"))
    assert "d.npz: no array 'x'; the archive holds: a, b" in err


# --- Labels that a split leaves out of training ----------------------------------------------


def _lonely_csv(tmp_path, lonely: list[str]) -> None:
    csv_with(tmp_path, "a,b,kind", rows(20) + [f"99,{i},{c}" for i, c in enumerate(lonely)])


def _spec_units(path: str, units: int) -> str:
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(
            text.replace("units: 2, activation: softmax", f"units: {units}, activation: softmax")
        )
    return path


def test_a_label_only_in_the_test_split_is_an_error(tmp_path, capsys):
    _lonely_csv(tmp_path, ["z"])
    spec = _spec_units(write_spec(tmp_path, "{csv: d.csv, target: kind, test_fraction: 0.6}"), 3)
    err = train_fails(tmp_path, capsys, spec)
    assert "spec.yaml:4:" in err and "data.test_fraction: class 'z' (1 sample) of " in err
    assert "would be only in the test split, never in training" in err
    assert "add samples of that class (2 at least)" in err
    assert "or lower data.test_fraction (now 0.6)" in err


def test_labels_only_in_the_validation_split_are_an_error(tmp_path, capsys):
    _lonely_csv(tmp_path, ["p", "q"])
    spec = write_spec(
        tmp_path,
        "{csv: d.csv, target: kind, test_fraction: 0.1}",
        train=", validation_fraction: 0.8",
    )
    err = train_fails(tmp_path, capsys, _spec_units(spec, 4))
    assert "train.validation_fraction: classes 'p' (1 sample), 'q' (1 sample) of " in err
    assert "would be only in the validation split, never in training" in err
    assert "lower train.validation_fraction (now 0.8)" in err


def test_compile_checks_the_split_too(tmp_path, capsys):
    _lonely_csv(tmp_path, ["z"])
    spec = _spec_units(write_spec(tmp_path, "{csv: d.csv, target: kind, test_fraction: 0.6}"), 3)
    assert cli.main(["compile", spec, "-o", str(tmp_path / "c.onnx")]) == 2
    assert "class 'z' (1 sample)" in capsys.readouterr().err
    assert not (tmp_path / "c.onnx").exists()


def test_a_single_sample_class_stays_in_training_with_a_small_fraction(tmp_path):
    _lonely_csv(tmp_path, ["z"])
    spec = nnspec.load_spec(
        _spec_units(write_spec(tmp_path, "{csv: d.csv, target: kind, test_fraction: 0.25}"), 3)
    )
    splits = pipeline.split_data(spec, pipeline.load_data(spec))
    assert 2 in splits.train.y and 2 not in splits.test.y


def test_the_unseen_label_error_is_a_spec_error(tmp_path):
    _lonely_csv(tmp_path, ["z"])
    spec = nnspec.load_spec(
        _spec_units(write_spec(tmp_path, "{csv: d.csv, target: kind, test_fraction: 0.6}"), 3)
    )
    with pytest.raises(SpecError, match="class 'z'"):
        pipeline.split_data(spec, pipeline.load_data(spec))


# --- nnspec predict inputs --------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    from conftest import ROOT

    path = tmp_path_factory.mktemp("model") / "iris.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "iris.yaml")), path)
    return str(path)


HEADER = "sepal_length,sepal_width,petal_length,petal_width"


@pytest.mark.parametrize(
    "text,message",
    [
        (f"{HEADER}\n5,3,1,0.2\n5,,1,0.2\n", "x.csv:3: column 'sepal_width': expected a number, "),
        (f"{HEADER}\n5,3,1,0.2\n5,nan,1,0.2\n", "x.csv:3: column 'sepal_width': expected a finite"),
        ("5,3,1,0.2\n5,3,1,-inf\n", "x.csv:2: column 4: expected a finite number, got -inf"),
        ("5,3,1,0.2\n5,3,1\n", "x.csv:2: expected 4 cells like the first row, got 3"),
        # A first row with a missing cell is data (not a header to skip): the error says so.
        ("5,,1,0.2\n5,3,1,0.2\n", "x.csv:1: column 2: expected a number, got an empty cell"),
        ("5,3,1,setosa\n", "x.csv:1: column 4: expected a number, got 'setosa'"),
        (
            '5,3,1,0.2\n5,3,1,"' + "2" * 200_000 + '"\n',
            "x.csv:2: cannot parse as CSV: field larger",
        ),
    ],
)
def test_predict_csv_errors(tmp_path, capsys, iris_model, text, message):
    (tmp_path / "x.csv").write_text(text)
    rc = cli.main(["predict", iris_model, str(tmp_path / "x.csv"), "-o", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    "array,message",
    [
        (
            np.ones((2, 4), complex),
            "x.npy: expected an array of real numbers, got dtype complex128",
        ),
        (np.ones((2, 4), "m8[s]"), "got dtype timedelta64[s]"),
        (
            np.where(np.eye(2, 4) > 0, np.nan, 1.0),
            "x.npy: expected finite numbers, got a NaN or inf",
        ),
    ],
)
def test_predict_npy_errors(tmp_path, capsys, iris_model, array, message):
    np.save(tmp_path / "x.npy", array)
    assert cli.main(["predict", iris_model, str(tmp_path / "x.npy")]) == 2
    assert message in capsys.readouterr().err


def test_predict_npz_given_as_npy(tmp_path, capsys, iris_model):
    with open(tmp_path / "x.npy", "wb") as f:  # np.savez would append .npz to a path
        np.savez(f, x=np.ones((2, 4)))
    assert cli.main(["predict", iris_model, str(tmp_path / "x.npy")]) == 2
    assert "an .npz archive; expected a single .npy array" in capsys.readouterr().err
