"""CSV files as tables of text cells: the one reader behind training data (``data: {csv:}``
and the built-in sets), ``nnspec predict`` inputs, ``nnspec init --from-data`` and the data
of ``nnspec plot``.

A table keeps, for each row, the line of the file where it starts, so that every error says
where: the file and line, the column (by its header name, else by its number), what was
expected and what was found. Blank rows are skipped but counted, and a quoted cell that spans
lines keeps the numbers of the lines after it right. Every data row has the header's width
(or, without a header, the first row's): a table that comes back is rectangular.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnspec_runtime.columns import MISSING  # cells that stand for a missing value

from .. import untrusted
from ..errors import DataError

# A header (or first row) may have this many columns; a data row is checked against the
# header's width before the csv module splits it, so that one 100 MB line of commas cannot
# become 50 million Python strings before the width error.
MAX_COLUMNS = 1_000_000
_QUOTED = re.compile(r'"[^"]*"')
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Row:
    """One row of cells, as the csv module splits them (not stripped)."""

    line: int  # the line of the file where the row starts, from 1
    cells: list[str]


@dataclass(frozen=True)
class Table:
    """A CSV file's header (if any) and data rows; see the module docstring."""

    source: str  # the file as messages name it
    header: list[str] | None  # column names, stripped; None: the file has no header row
    header_line: int  # the header's line in the file (0 without a header)
    rows: list[Row]  # at least one, each as wide as the header (or the first row)

    @property
    def width(self) -> int:
        return len(self.header) if self.header is not None else len(self.rows[0].cells)

    def column(self, j: int) -> str:
        """Column ``j`` as a message names it: ``column 'petal_width'``, or ``column 4``."""
        return f"column '{self.header[j]}'" if self.header is not None else f"column {j + 1}"

    def text(self, row: Row, j: int) -> str:
        """Cell ``j`` of ``row``, stripped of the spaces around it."""
        return row.cells[j].strip()

    def locate(self, names: Sequence[str], hint: str = "") -> list[int]:
        """The column of each name in the header; a name missing from the header, appearing
        in it more than once or empty (a column without a name) is an error. ``hint``, when
        given, is added to the message about a column without a name."""
        assert self.header is not None, "locate needs a header row"
        where = f"{self.source}:{self.header_line}"
        missing = [n for n in dict.fromkeys(names) if n not in self.header]
        if missing:
            raise DataError(
                f"{where}: column(s) {', '.join(missing)} not in the header; "
                f"the columns are: {', '.join(self.header)}"
            )
        for name in dict.fromkeys(names):
            found = [j + 1 for j, h in enumerate(self.header) if h == name]
            if not name:
                raise DataError(
                    f"{where}: column {found[0]} has no name in the header; expected a name "
                    f"for every column{f' ({hint})' if hint else ''}"
                )
            if len(found) > 1:
                raise DataError(
                    f"{where}: column name '{name}' appears {len(found)} times in the header "
                    f"(columns {', '.join(map(str, found))}); expected unique column names"
                )
        return [self.header.index(n) for n in names]

    def number(self, row: Row, j: int) -> float:
        """Cell ``j`` of ``row`` as a finite float, or an error that says where and why not."""
        cell = row.cells[j]
        where = f"{self.source}:{row.line}: {self.column(j)}"
        if not cell.strip():
            raise DataError(f"{where}: expected a number, got an empty cell (a missing value?)")
        try:
            value = float(cell)
        except ValueError:
            raise DataError(f"{where}: expected a number, got {cell!r:.80}") from None
        if not math.isfinite(value):
            raise DataError(f"{where}: expected a finite number, got {cell.strip():.80}")
        # float() also reads "5_1" as 51 and Arabic-Indic digits: ASCII decimal only.
        if not untrusted.is_plain_number(cell):
            raise DataError(
                f"{where}: expected a number in ASCII decimal (like -1.5e3), got {cell!r:.80}"
            )
        if abs(value) > _FLOAT32_MAX:
            raise DataError(
                f"{where}: {cell.strip():.80} is beyond float32's range (±{_FLOAT32_MAX:.4g}), "
                "in which the model runs; expected a smaller number (rescale the column)"
            )
        return value

    def numbers_or_missing(self, j: int) -> np.ndarray:
        """Column ``j`` as float64 (rows,), NaN where a cell is missing (``MISSING``); any
        other cell that is not a finite number is an error, as ``number`` says it."""
        out = np.empty(len(self.rows))
        for i, row in enumerate(self.rows):
            out[i] = math.nan if row.cells[j].strip() in MISSING else self.number(row, j)
        return out

    @property
    def lines(self) -> np.ndarray:
        """The file line where each data row starts, (rows,) int64."""
        return np.array([r.line for r in self.rows], dtype=np.int64)

    def numbers(self, columns: Sequence[int]) -> np.ndarray:
        """(rows, len(columns)) float64 of those columns, read row by row: the first bad
        cell in the file is the one reported."""
        out = np.empty((len(self.rows), len(columns)))
        for i, row in enumerate(self.rows):
            for k, j in enumerate(columns):
                out[i, k] = self.number(row, j)
        return out


def read_text(path: Path) -> str:
    """A CSV file's text (a UTF-8 byte-order mark dropped), or a DataError that says why not:
    a regular file only (a FIFO or a device is refused before it is opened), no larger than
    the memory that its table would take (about 10 times its size)."""
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: data file not found")
    limit = min(untrusted.MAX_FILE_BYTES, untrusted.memory_limit() // 10)
    data = untrusted.read_bytes(path, "data file", DataError, limit=limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: cannot read as UTF-8 CSV text: {e}") from None


def _physical_lines(text: str) -> Iterator[str]:
    """The lines of ``text`` with their ends, one at a time (``io.StringIO`` would copy the
    whole text, at up to 4 bytes a character)."""
    start, n = 0, len(text)
    while start < n:
        end = text.find("\n", start)
        end = n if end < 0 else end + 1
        yield text[start:end]
        start = end


class _Lines:
    """The physical lines of a CSV text for ``csv.reader``, each checked before it is split:
    outside a quoted cell, a line whose separators (counted outside quotes) already make more
    cells than ``width`` is an error at once, without the csv module building its cells."""

    def __init__(self, text: str, source: str):
        self.lines = _physical_lines(text)
        self.source, self.number, self.width, self.quoted = source, 0, MAX_COLUMNS, False
        self.like = "the header"

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.number += 1
        # Short lines cannot make many cells: the csv module splits them, and the width
        # check after it gives the exact message.
        if not self.quoted and len(line) > 2**16 and line.count(",") >= self.width:
            # Without a quote every comma separates (no copy of the line is made).
            outside = _QUOTED.sub("", line) if '"' in line else line
            cells = outside.partition('"')[0].count(",") + 1 if '"' in outside else None
            cells = cells if cells is not None else outside.count(",") + 1
            if cells > self.width:
                at = f"{self.source}:{self.number}"
                least = "at least " if '"' in outside else ""
                if self.width == MAX_COLUMNS:
                    raise DataError(
                        f"{at}: {least}{cells:,} columns; expected at most {MAX_COLUMNS:,}"
                    )
                raise DataError(
                    f"{at}: expected {self.width:,} cells like {self.like}, got {least}{cells:,} "
                    f"({cells - self.width:,} more); refused before splitting the line"
                )
        if line.count('"') % 2:
            self.quoted = not self.quoted
        return line


def _rows(text: str, source: str, lines: _Lines | None = None) -> Iterator[Row]:
    """The rows of ``text`` that hold something, with the line each starts on. ``lines``,
    when given, feeds the reader (its ``width`` may be set once the header is known)."""
    lines = lines or _Lines(text, source)
    reader = csv.reader(lines)
    start = 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                yield Row(start, cells)
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{source}:{start}: cannot parse as CSV: {e}") from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def parse(text: str, source: str, header: bool | None = True) -> Table:
    """The table in CSV ``text``; ``source`` names it in messages.

    ``header``: True, the first row is the header; None, it is one when none of its cells is
    a number (``nnspec predict`` takes files with or without one).
    """
    lines = _Lines(text, source)
    rows = []
    for row in _rows(text, source, lines):
        if not rows:  # the header (or the first row) sets the width the others are held to
            lines.width = len(row.cells)
            first_is_header = header or (
                header is None and not any(_is_number(c) for c in row.cells)
            )
            lines.like = "the header" if first_is_header else "the first row"
        rows.append(row)
    if not rows:
        expected = "a header row and data rows" if header else "rows of numbers"
        raise DataError(f"{source}: the file is empty; expected {expected}")
    if header is None:
        header = not any(_is_number(c) for c in rows[0].cells)
    names, header_line = None, 0
    if header:
        first = rows.pop(0)
        names, header_line = [c.strip() for c in first.cells], first.line
        if not rows:
            raise DataError(f"{source}: no data rows after the header (line {header_line})")
    table = Table(source, names, header_line, rows)
    for row in rows:
        _check_width(table, row)
    return table


def _check_width(table: Table, row: Row) -> None:
    width, got = table.width, len(row.cells)
    if got == width:
        return
    like = "the header" if table.header is not None else "the first row"
    if got < width:
        absent = table.header[got:] if table.header is not None else range(got + 1, width + 1)
        detail = f"no cell for column(s) {', '.join(map(str, absent))}"
    elif table.header is not None:
        detail = f"{got - width} more than the header has columns"
    else:
        detail = f"{got - width} more than the first row has"
    raise DataError(
        f"{table.source}:{row.line}: expected {width} cells like {like}, got {got} ({detail})"
    )


def read(path: Path, header: bool | None = True) -> Table:
    """The table in the CSV file at ``path``; ``header`` as for ``parse``."""
    return parse(read_text(path), str(path), header)


def read_header(path: Path) -> list[str]:
    """The first row that holds something, stripped (the column names of a file with a
    header row); empty for an empty file. The rest of the file is not parsed."""
    first = next(_rows(read_text(path), str(path)), None)
    return [c.strip() for c in first.cells] if first else []
