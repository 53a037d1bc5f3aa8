"""The fast path for numeric CSVs: NumPy's C parser (``np.loadtxt``), streamed from the file.

``csv_table`` reads a file cell by cell in Python so that every error can say where; that
costs about 3.4× ``np.loadtxt``'s time and a copy of the whole text. Here the header is read
with the csv module, and the rows go through ``np.loadtxt`` in one pass, straight into
float64, the class-label column (if any) through a converter. Anything this path does not
take exactly as the located reader would (a quoted cell, an empty cell, a NaN, a ragged row,
text in a number column, a byte that is not UTF-8) makes it give up, returning None, and the
caller reads the file with the located reader, which gives the same data or its precise
error. So the fast path changes speed, never results or messages.
"""

from __future__ import annotations

import csv
import math
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import csv_table

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class NumericCsv:
    """A CSV read by the fast path: its header (as a row-less Table), every column as
    float64 (samples, columns), and the label column's stripped text when one was asked."""

    header: csv_table.Table
    values: np.ndarray
    labels: list[str] | None


class _GiveUp(Exception):
    """The fast path cannot read this file exactly as the located reader would."""


def _header(path: Path) -> tuple[list[str], int]:
    """The first non-blank line's cells (stripped) and its line number."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if '"' in line:
                raise _GiveUp  # a quoted header may span lines: the located reader knows how
            cells = next(csv.reader([line]))
            if not any(c.strip() for c in cells):
                continue
            return [c.strip() for c in cells], number
    raise _GiveUp  # empty: the located reader says so


def read_numeric(path: Path, label_column: str | None = None) -> NumericCsv | None:
    """The file's columns as float64, the ``label_column`` (a header name) as text; None when
    the file is not a plain numeric CSV that NumPy parses exactly as the located reader."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None
        names, line = _header(path)
        table = csv_table.Table(str(path), names, line, [])
        label_at = None
        if label_column is not None:
            if names.count(label_column) != 1:
                return None
            label_at = names.index(label_column)
        labels: list[str] = []

        def label(cell: str) -> float:
            # One Python call per row, for the label column alone: labels are kept as text.
            text = cell.strip()
            if not text or text.startswith('"'):
                raise _GiveUp
            try:
                if not math.isfinite(float(text)):
                    raise _GiveUp
            except ValueError:
                pass
            labels.append(text)
            return 0.0

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": the caller says so
            values = np.loadtxt(
                path,
                delimiter=",",
                skiprows=line,
                dtype=np.float64,
                comments=None,
                encoding="utf-8",
                ndmin=2,
                converters={label_at: label} if label_at is not None else None,
            )
    except (_GiveUp, ValueError, OSError, UnicodeDecodeError, csv.Error, StopIteration):
        return None
    if values.shape[0] == 0 or values.shape[1] != len(names):
        return None
    numeric = [j for j in range(len(names)) if j != label_at]
    # NumPy reads nan and inf, which the located reader refuses with its message.
    check = values if label_at is None else values[:, numeric]
    # Values beyond float32's range are finite here and inf in the exported model: the
    # located reader refuses them with its message (untrusted.check_finite's rule).
    if not np.isfinite(check).all() or (check.size and np.abs(check).max() > _FLOAT32_MAX):
        return None
    return NumericCsv(table, values, labels if label_at is not None else None)


def columns(values: np.ndarray, cols: list[int]) -> np.ndarray:
    """``values[:, cols]``: a view for a run of adjacent columns (no copy of the data), else
    a copy."""
    if cols == list(range(cols[0], cols[0] + len(cols))):
        return values[:, cols[0] : cols[0] + len(cols)]
    return values[:, cols]
