"""Reading inputs for ``nnspec predict`` (CSV or NPY) and writing its CSV output."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np

from .. import untrusted
from ..errors import DataError
from . import csv_table


def _read_npy(path: Path, n_features: int | None) -> np.ndarray:
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: data file not found")
    untrusted.check_regular_file(path, "data file", DataError)
    if zipfile.is_zipfile(path):
        raise DataError(f"{path}: an .npz archive; expected a single .npy array")
    # The header is checked (no pickle; the size it claims is the size the file has) before
    # the array is allocated: a 160-byte file claiming (10**11, 4) is refused, not a MemoryError.
    x = untrusted.read_npy(path, str(path), DataError)
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
    table = csv_table.read(path, header=None)
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
        if not path.exists() and not path.is_symlink():
            raise DataError(f"{path}: data file not found")
        # Through nnspec.untrusted: a regular file, and the columns' uncompressed size (from
        # the file's footer) against the memory there is, before anything is decompressed.
        untrusted.check_regular_file(path, "data file", DataError)
        try:
            meta = pq.ParquetFile(path).metadata
            size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        except Exception as e:  # noqa: BLE001  pyarrow's own error types
            raise DataError(f"{path}: not a readable Parquet file: {e}") from None
        untrusted.check_allocation(size, f"{path}: its columns, uncompressed", DataError)
        try:
            table = pq.read_table(path)
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


def spreadsheet_safe(text: str) -> str:
    """A text cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``,
    ``-``, ``@``, or a tab or carriage return before one) gets a leading ``'``, as OWASP advises
    for CSV injection; a cell that is a number (``-1`` as a class name) stays as it is."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not untrusted.is_plain_number(text):
        return "'" + text
    return text


def write_predictions(pred) -> str:
    """CSV text: ``label`` and one ``p_<class>`` column per class, or the target columns.
    Class and target names come from the model, so they are made spreadsheet-safe."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if pred.task == "classification":
        w.writerow(["label", *(f"p_{c}" for c in pred.class_names)])
        safe = {c: spreadsheet_safe(str(c)) for c in pred.class_names}
        for label, probs in zip(pred.labels, pred.probabilities, strict=True):
            w.writerow([safe.get(label, label), *(f"{p:.6g}" for p in probs)])
    else:
        names = pred.target_names or [f"y{i}" for i in range(pred.values.shape[1])]
        w.writerow([spreadsheet_safe(n) for n in names])
        for row in pred.values:
            w.writerow([f"{v:.6g}" for v in row])
    return out.getvalue()
