"""Parquet files: ``data: {parquet: path_or_glob, target: col, features: [...]}``.

pyarrow (``pip install "nnspec[parquet]"``) is imported only here, only when a Parquet source
is read. Files are untrusted: each must be a regular file, and its columns are checked against
the names asked for before any is read; several files (a glob) must share their columns.
"""

from __future__ import annotations

import glob
import stat
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import arrays
from .core import Dataset

MISSING = 'reading Parquet needs pyarrow: pip install "nnspec[parquet]"'


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(MISSING) from None
    return pa, pq


def parquet_files(path: Path) -> list[Path]:
    """The file, or the glob's matches in sorted order; an error naming the pattern if none."""
    text = str(path)
    if glob.has_magic(text):
        found = sorted(Path(p) for p in glob.glob(text))
        if not found:
            raise DataError(f"{path}: no file matches this pattern; expected Parquet file(s)")
        return found
    return [path]


def read_table(path: Path, columns: list[str] | None = None):
    """A pyarrow Table of the Parquet file(s) at ``path`` (a path or a glob)."""
    pa, pq = _pyarrow()
    tables = []
    for file in parquet_files(path):
        try:
            st = file.stat()
        except FileNotFoundError:
            raise DataError(f"{file}: data file not found") from None
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{file}: not a regular file; expected a Parquet file")
        if st.st_size == 0:
            raise DataError(f"{file}: the file is empty; expected a Parquet file")
        try:
            schema = pq.read_schema(file)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{file}: not a readable Parquet file: {e}") from None
        names = list(schema.names)
        missing = [c for c in columns or [] if c not in names]
        if missing:
            raise DataError(
                f"{file}: column(s) {', '.join(missing)} not in the file; the columns are: "
                f"{', '.join(names)}"
            )
        try:
            tables.append(pq.read_table(file, columns=columns))
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{file}: cannot read the Parquet data: {e}") from None
    if len(tables) > 1:
        first = tables[0].schema
        for file, t in zip(parquet_files(path)[1:], tables[1:], strict=True):
            if not t.schema.equals(first):

                def cols(schema):
                    return ", ".join(f"{f.name}: {f.type}" for f in schema)

                raise DataError(
                    f"{file}: its columns ({cols(t.schema)}) differ from the first file's "
                    f"({cols(first)}); expected the same columns and types"
                )
        return pa.concat_tables(tables)
    return tables[0]


def load_parquet(
    path: Path,
    target: str | list[str],
    features: list[str] | None,
    task: str,
    held_out: bool = False,
) -> Dataset:
    """A Dataset of the Parquet file(s): ``features`` (default: every column but the
    targets) as x, ``target`` as y."""
    targets = [target] if isinstance(target, str) else list(target)
    columns = None if features is None else [*features, *targets]
    table = read_table(path, columns)
    missing = [t for t in targets if t not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(missing)} not in the file; the columns are: "
            f"{', '.join(table.column_names)}"
        )
    where = str(path)
    feats = arrays.from_frame(table, features, exclude=targets, where=where)
    if task == "classification":
        y, ywhere = table.column(targets[0]).to_pylist(), f"{where}: column '{targets[0]}'"
    else:
        y = np.column_stack([table.column(t).to_numpy() for t in targets])
        ywhere = f"{where}: target column(s) {', '.join(targets)}"
    return arrays.labelled(feats, y, targets, task, where, ywhere, held_out=held_out).dataset
