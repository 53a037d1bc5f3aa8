"""Reading inputs for ``nnspec predict`` (CSV or NPY) and writing its CSV output."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ..errors import DataError


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_npy(path: Path, n_features: int | None) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
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
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as UTF-8 CSV text: {e}") from None
    # Keep each row's line number in the file for messages (a quoted cell may span lines);
    # blank lines are skipped.
    reader = csv.reader(io.StringIO(text))
    rows, start = [], 1
    try:
        for row in reader:
            if any(map(str.strip, row)):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path}:{start}: cannot parse as CSV: {e}") from None
    if not rows:
        raise DataError(f"{path}: the file is empty")
    header = None
    if not any(_is_number(c) for c in rows[0][1]):
        header, rows = [h.strip() for h in rows[0][1]], rows[1:]
    width = len(header) if header else len(rows[0][1]) if rows else 0
    cols = list(range(width))
    if header and feature_names:
        missing = [f for f in feature_names if f not in header]
        if missing:
            raise DataError(
                f"{path}:1: the model's feature column(s) {', '.join(missing)} are not in the "
                f"header ({', '.join(header)}); expected columns named {', '.join(feature_names)}"
            )
        cols = [header.index(f) for f in feature_names]
    x = np.empty((len(rows), len(cols)))
    for i, (lineno, row) in enumerate(rows):
        if len(row) != width:
            like = "like the header" if header else "like the first row"
            raise DataError(f"{path}:{lineno}: expected {width} cells {like}, got {len(row)}")
        for j, c in enumerate(cols):
            name = f"column '{header[c]}'" if header else f"column {c + 1}"
            cell = row[c].strip()
            if not cell:
                raise DataError(
                    f"{path}:{lineno}: {name}: expected a number, got an empty cell "
                    "(a missing value?)"
                )
            try:
                x[i, j] = float(cell)
            except ValueError:
                raise DataError(
                    f"{path}:{lineno}: {name}: expected a number, got {row[c]!r}"
                ) from None
            if not math.isfinite(x[i, j]):
                raise DataError(f"{path}:{lineno}: {name}: expected a finite number, got {cell}")
    return x


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
