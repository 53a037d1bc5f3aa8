"""Reading inputs for ``nnspec predict`` (CSV or NPY) and writing its CSV output."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .errors import DataError


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_inputs(path: Path, feature_names: list[str] | None, n_features: int | None) -> np.ndarray:
    """(rows, features) float64 from a .npy, or a CSV with or without a header row.

    With a header, the model's feature columns are picked by name (other columns, such as the
    target, are ignored); without one, every column is a feature, in the model's order.
    """
    if path.suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"{path}: no such file") from None
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{path}: not a readable .npy array (no pickle allowed): {e}") from None
        if x.ndim == 1 and n_features == 1:
            x = x.reshape(-1, 1)
        return x
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as UTF-8 CSV text: {e}") from None
    # Keep each row's line number in the file for messages; blank lines are skipped.
    rows = [
        (n, r) for n, r in enumerate(csv.reader(io.StringIO(text)), 1) if any(map(str.strip, r))
    ]
    if not rows:
        raise DataError(f"{path}: the file is empty")
    header = None
    if not all(_is_number(c) for c in rows[0][1]):
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
            raise DataError(f"{path}:{lineno}: expected {width} cells, got {len(row)}")
        for j, c in enumerate(cols):
            try:
                x[i, j] = float(row[c])
            except ValueError:
                name = header[c] if header else f"column {c + 1}"
                raise DataError(
                    f"{path}:{lineno}: {name}: expected a number, got {row[c]!r}"
                ) from None
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
