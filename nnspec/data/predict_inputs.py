"""Reading inputs for ``nnspec predict`` (CSV or NPY) and writing its CSV output."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import csv_table


def _read_npy(path, n_features: int | None, where: str | None = None) -> np.ndarray:
    """``path``: a file's path, or a file object (standard input's bytes) named ``where``."""
    source, path = path, where or path
    try:
        x = np.load(source, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: data file not found") from None
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy array (no pickle allowed): {e}") from None
    if not isinstance(x, np.ndarray):
        raise DataError(f"{path}: an .npz archive; expected a single .npy array")
    # Real numbers only: complex, timedelta (an integer to NumPy), dates and strings are not.
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected an array of real numbers, got dtype {x.dtype}")
    if x.ndim == 1 and n_features == 1:
        x = x.reshape(-1, 1)
    with np.errstate(over="ignore"):
        finite = np.isfinite(x.astype(np.float64, copy=False))
    if not finite.all():
        bad = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise DataError(f"{path}: expected finite numbers, got a NaN or inf at index {bad}")
    return x


def read_inputs(path: Path, feature_names: list[str] | None, n_features: int | None) -> np.ndarray:
    """(rows, features) float64 from a .npy, or a CSV with or without a header row.

    With a header, the model's feature columns are picked by name (other columns, such as the
    target, are ignored); without one, every column is a feature, in the model's order. The
    first row is a header when none of its cells is a number.
    """
    if path.suffix == ".npy":
        return _read_npy(path, n_features)
    return _columns(csv_table.read(path, header=None), path, feature_names)


def read_inputs_bytes(
    data: bytes, where: str, feature_names: list[str] | None, n_features: int | None
) -> np.ndarray:
    """As ``read_inputs``, from bytes (standard input): .npy when they start with NumPy's
    magic string, else CSV text; messages name them ``where``."""
    if data.startswith(b"\x93NUMPY"):
        return _read_npy(io.BytesIO(data), n_features, where)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{where}: cannot read as UTF-8 CSV text (or .npy): {e}") from None
    return _columns(csv_table.parse(text, where, None), where, feature_names)


def _columns(table, path, feature_names: list[str] | None) -> np.ndarray:
    cols = list(range(table.width))
    if table.header is not None and feature_names:
        cols = _model_columns(path, table, feature_names)
    return table.numbers(cols)


def _model_columns(path: Path, table: csv_table.Table, names: list[str]) -> list[int]:
    """The header's column of each of the model's feature names, or an error listing both."""
    missing = [f for f in names if f not in table.header]
    if missing:
        raise DataError(
            f"{path}:{table.header_line}: the model's feature column(s) "
            f"{', '.join(missing)} are not in the header ({', '.join(table.header)}); "
            f"expected columns named {', '.join(names)}"
        )
    return table.locate(names)


def read_columns(path: Path, names: list[str]) -> tuple[dict[str, list], list[int] | None]:
    """A tabular model's raw columns from a CSV with a header row (cells as text; the runtime
    converts and checks them) or, with pyarrow installed, a Parquet file: (name -> values,
    the file line of each row, or None for Parquet)."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(
                f"{path}: reading Parquet needs pyarrow (pip install pyarrow); or give a CSV"
            ) from None
        try:
            table = pq.read_table(path)
        except FileNotFoundError:
            raise DataError(f"{path}: data file not found") from None
        except Exception as e:  # pyarrow's own error types: a damaged or foreign file
            raise DataError(f"{path}: not a readable Parquet file: {e}") from None
        missing = [n for n in names if n not in table.column_names]
        if missing:
            raise DataError(
                f"{path}: the model's column(s) {', '.join(missing)} are not in the file "
                f"({', '.join(table.column_names)})"
            )
        return {n: table.column(n).to_pylist() for n in names}, None
    table = csv_table.read(path, header=True)
    cols = _model_columns(path, table, names)
    columns = {n: [r.cells[j] for r in table.rows] for n, j in zip(names, cols, strict=True)}
    return columns, [r.line for r in table.rows]


def write_predictions(pred) -> str:
    """CSV text: ``label`` and one ``p_<class>`` column per class, or the target columns."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if pred.task == "classification":
        w.writerow(["label", *(f"p_{c}" for c in pred.class_names)])
        for label, probs in zip(pred.labels, pred.probabilities, strict=True):
            w.writerow([label, *(f"{p:.6g}" for p in probs)])
    else:
        names = pred.target_names or [f"y{i}" for i in range(pred.values.shape[1])]
        w.writerow(names)
        for row in pred.values:
            w.writerow([f"{v:.6g}" for v in row])
    return out.getvalue()
