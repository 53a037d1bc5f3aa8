"""Score one partition file (Parquet or CSV) into one output file, written atomically.

This is the unit of work of partitioned scoring: ``nnspec predict --engine dask`` sends one
call per input file to the cluster, and the single-process engine runs the same calls one
after the other. The file is streamed in record batches (``batch_rows``: about
``BATCH_BYTES`` of float32 features each), so a worker holds one batch of inputs and outputs
at a time, whatever the size of the file.

Files are untrusted: a file that pyarrow cannot read, a missing or non-numeric feature
column, an empty cell or a NaN is a ``RuntimeModelError`` that names the file, the column and
the row (CSV: the line; Parquet: the row's 0-based index), never a traceback.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import RuntimeModelError
from ..files import regular_stat, sync_directory
from .sessions import worker_model

# A batch's float32 features: 16 MiB, as a CSV block (``_batches``). Rows, not bytes, set the
# size of everything after the input too (the network's activations, onnxruntime's arena,
# the outputs), so a fixed row count made a worker's peak follow the row's width: the DBN's
# 784 columns at 65,536 rows peaked at 1.8 GiB a worker; at 5,349 rows (16 MiB), 0.8 GiB,
# and no slower (100,000 rows in 4.2-5.3 s either way).
BATCH_BYTES = 1 << 24
MAX_BATCH_ROWS = 65536
MIN_BATCH_ROWS = 1024


def batch_rows(columns: int) -> int:
    """Rows per record batch for ``columns`` feature columns: ``BATCH_BYTES`` of float32,
    within [``MIN_BATCH_ROWS``, ``MAX_BATCH_ROWS``]."""
    rows = BATCH_BYTES // (4 * max(1, columns))
    return max(MIN_BATCH_ROWS, min(MAX_BATCH_ROWS, rows))


FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


class PartitionError(RuntimeModelError):
    """An input partition that cannot be scored (unreadable, wrong columns, bad values)."""


def partition_format(path: str | Path) -> str:
    """ "parquet" or "csv", from the file's extension."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise PartitionError(
            f"{path}: expected a Parquet (.parquet, .pq) or CSV (.csv) file, got "
            f"{Path(path).suffix or 'no extension'}"
        )
    return fmt


def _arrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise PartitionError(
            "partitioned scoring reads files with pyarrow, which is not installed: "
            'pip install "nnspec-runtime[dask]" (or "nnspec[dask]")'
        ) from None
    import pyarrow as pa

    return pa


def input_schema(path: str | Path):
    """The arrow schema of a partition file (Parquet: from its footer; CSV: its header and
    the types of its first block)."""
    _arrow()
    fmt = partition_format(path)
    # A FIFO or a device would block pyarrow or never end: refused before it is opened.
    regular_stat(path, f"{fmt} partition", PartitionError)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).schema_arrow
        import pyarrow.csv as pacsv

        with pacsv.open_csv(path) as reader:
            return reader.schema
    except FileNotFoundError:
        raise PartitionError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise PartitionError(f"{path}: not a readable {fmt} file: {e}") from None


def row_count(path: str | Path) -> int | None:
    """Rows of a Parquet file, from its footer (None for CSV, or a file that is not whole)."""
    if partition_format(path) != "parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, ValueError):
        return None


def _batches(path: Path, fmt: str, columns: list[str]):
    """Record batches of ``columns``, in file order."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        rows = batch_rows(len(columns))
        yield from pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns)
        return
    import pyarrow.csv as pacsv

    # Feature columns are read as float64 whatever they look like, so that a stray word is
    # reported where it is (by the conversion below) instead of turning the column to text.
    convert = pacsv.ConvertOptions(include_columns=columns)
    with pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        convert_options=convert,
    ) as reader:
        yield from reader


def _where(fmt: str, row: int) -> str:
    # CSV: the header is line 1, so row 0 is line 2 (no quoted newlines assumed).
    return f"line {row + 2}" if fmt == "csv" else f"row {row}"


def _inputs(model, batch, names: list[str], path: Path, fmt: str, first_row: int):
    """What ``model.predict`` takes for one batch: a tabular model's raw columns (a Table,
    checked by the model itself), else the (rows, features) matrix of ``_features``."""
    if model.columns is None:
        return _features(batch, names, path, fmt, first_row)
    import pyarrow as pa

    from ..errors import ColumnError

    table = pa.Table.from_batches([batch]).select(names)
    try:
        model.check_columns(table)  # here, so that a bad cell is named by its row in the file
    except ColumnError as e:
        raise PartitionError(
            f"{path}: {_where(fmt, first_row + e.row)}, column {e.column!r}: {e.detail}"
        ) from None
    return table


def _features(batch, names: list[str], path: Path, fmt: str, first_row: int) -> np.ndarray:
    """(rows, features) float32 of the feature columns, in the model's order; an empty cell,
    a word or a NaN is an error at its row and column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = [batch.column(batch.schema.get_field_index(name)) for name in names]
    numeric = True
    for name, col in zip(names, cols, strict=True):
        if col.null_count:
            i = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
            raise PartitionError(
                f"{path}: {_where(fmt, first_row + i)}, column {name!r}: expected a number, "
                "got an empty cell (null)"
            )
        t = col.type
        numeric &= pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t)
    x = None
    if numeric and len({c.type for c in cols}) == 1 and not pa.types.is_boolean(cols[0].type):
        try:  # one copy in arrow's C++ into a row-major matrix: 4x a column-by-column copy
            x = np.asarray(pa.RecordBatch.from_arrays(cols, names).to_tensor(row_major=True))
        except (pa.ArrowException, ValueError, TypeError):
            x = None
    if x is None:
        x = np.empty((batch.num_rows, len(names)), np.float32)
        for j, (name, col) in enumerate(zip(names, cols, strict=True)):
            t = col.type
            if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t):
                values = col.to_numpy(zero_copy_only=False)
            else:
                values = _parse_numbers(col, name, path, fmt, first_row)
            with np.errstate(over="ignore"):
                x[:, j] = values
    with np.errstate(over="ignore"):
        x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(np.einsum("ij->", x, dtype=np.float64)) and not np.isfinite(x).all():
        i, j = (int(v) for v in np.argwhere(~np.isfinite(x))[0])
        raise PartitionError(
            f"{path}: {_where(fmt, first_row + i)}, column {names[j]!r}: expected a finite "
            "number (in float32), got a NaN or inf"
        )
    return x


def _parse_numbers(col, name: str, path: Path, fmt: str, first_row: int) -> np.ndarray:
    """A text column of numbers, as float64; the first cell that is not one is an error."""
    text = col.to_pylist()
    out = np.empty(len(text), np.float64)
    for i, cell in enumerate(text):
        try:
            out[i] = float(cell)
        except (TypeError, ValueError):
            raise PartitionError(
                f"{path}: {_where(fmt, first_row + i)}, column {name!r}: expected a number, "
                f"got {cell!r} (column type {col.type})"
            ) from None
    return out


def prediction_columns(model, pred) -> dict[str, np.ndarray]:
    """Output columns of one batch: ``label`` and ``p_<class>``, or the target names; the
    same names as single-process ``nnspec predict`` writes."""
    if pred.task == "classification":
        cols = {"label": np.asarray(pred.labels, dtype=object).astype(str)}
        for k, c in enumerate(pred.class_names):
            cols[f"p_{c}"] = pred.probabilities[:, k]
        return cols
    names = pred.target_names or [f"y{i}" for i in range(pred.values.shape[1])]
    return {n: pred.values[:, k] for k, n in enumerate(names)}


class _Staged:
    """A temporary file beside ``path``, renamed over it on success (after fsync), removed
    on failure: a reader of ``path`` sees no file or a whole one, never a part.

    nnspec/atomic.py does the same for nnspec's outputs; the runtime never imports nnspec
    (workers that only score need only the runtime), so it keeps its own few lines."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, kind, *_):
        if kind is not None:
            self.tmp.unlink(missing_ok=True)
            return False
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(self.tmp, 0o666 & ~_umask())
        os.replace(self.tmp, self.path)
        sync_directory(self.path.parent)
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _feature_names(model, columns: list[str], path: Path, keep: list[str]) -> list[str]:
    names = model.feature_names
    if names is None:
        raise PartitionError(
            f"{model.path}: the model has no feature names in its metadata, so the columns of "
            f"{path} cannot be matched to its inputs; expected a model exported by nnspec"
        )
    missing = [n for n in [*names, *keep] if n not in columns]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise PartitionError(
            f"{path}: column(s) {shown} not found; expected the model's feature columns "
            f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}) and --keep columns, "
            f"got {', '.join(columns[:8])}{', ...' if len(columns) > 8 else ''}"
        )
    return names


def score_file(
    path: str | Path,
    output: str | Path,
    model_path: str | Path,
    *,
    keep: list[str] | tuple[str, ...] = (),
    threads: int | None = None,
    device: str = "cpu",
) -> dict:
    """Score the partition ``path`` into ``output`` (same format), atomically.

    Output columns: the ``keep`` columns as they were in the input, then ``label`` and one
    ``p_<class>`` float32 column per class (regression: one column per target), rows in input
    order. ``device`` as ``Model`` takes it ("cpu", "cuda", "auto"), on the worker that
    runs this. Returns ``{"rows", "seconds", "peak_rss_bytes", "pid", "device"}``.
    """
    pa = _arrow()
    t0 = time.perf_counter()
    path, output = Path(path), Path(output)
    fmt = partition_format(path)
    if partition_format(output) != fmt:
        raise PartitionError(f"{output}: expected a .{fmt} output for {path} (same format)")
    model = worker_model(model_path, threads, device)
    keep = list(keep)
    schema = input_schema(path)
    names = _feature_names(model, schema.names, path, keep)
    columns = list(dict.fromkeys([*keep, *names]))
    rows = 0
    with _Staged(output) as tmp:
        writer = None
        try:
            for batch in _batches(path, fmt, columns):
                x = _inputs(model, batch, names, path, fmt, rows)
                cols = {k: batch.column(batch.schema.get_field_index(k)) for k in keep}
                cols.update(prediction_columns(model, model.predict(x)))
                table = pa.table(cols)
                writer = _write(writer, table, tmp, fmt, first=rows == 0)
                rows += batch.num_rows
            if writer is None:  # an input without rows: an output without rows, same columns
                writer = _write(None, _empty(model, schema, keep), tmp, fmt, first=True)
        except (OSError, ValueError) as e:
            if isinstance(e, RuntimeModelError):
                raise
            raise PartitionError(f"{path}: not a readable {fmt} file: {e}") from None
        finally:
            if writer is not None and hasattr(writer, "close"):
                writer.close()
    return {
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "peak_rss_bytes": peak_rss(),
        "pid": os.getpid(),
        "device": model.device,
    }


def _empty(model, schema, keep: list[str]):
    """The output of an input without rows: no rows, the same columns and types."""
    import pyarrow as pa

    cols = {k: pa.array([], schema.field(k).type) for k in keep}
    x = np.zeros((0, model.n_features or 1), np.float32)
    cols.update(prediction_columns(model, model.predict(x)))
    return pa.table(cols)


def _write(writer, table, tmp: Path, fmt: str, first: bool):
    """Append ``table`` to the staged output; returns the writer to use for the next one."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
        return writer
    # CSV as single-process ``nnspec predict`` writes it: floats with 6 significant digits.
    frame = table.to_pandas()
    text = frame.to_csv(index=False, header=first, float_format="%.6g", lineterminator="\n")
    with open(tmp, "a" if not first else "w", encoding="utf-8") as f:
        f.write(text)
    return writer or _CsvDone()


class _CsvDone:
    """Marks a CSV output that has its header (CSV has no writer object to keep open)."""


def peak_rss() -> int | None:
    """This process's peak resident memory in bytes (Linux VmHWM), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
