"""Partitioned scoring: many input files, one output file each, in this process or on Dask.

``plan_partitions`` turns an input pattern and an output directory into (input, output)
pairs; ``score_partitions`` runs ``nnspec_runtime.dask.score_file`` on each, either here one
after the other (the single-process engine, which also serves as the reference the Dask
engine must equal) or as one Dask task per partition. Outputs are written atomically by the
task itself, so a partition's output exists only when whole; ``resume`` skips those, and a
killed worker's partition is retried by Dask (on another worker) from the start.
"""

from __future__ import annotations

import glob
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..untrusted import check_regular_file
from .cluster import EngineError

MANIFEST = "_nnspec_predict.json"


@dataclass(frozen=True)
class Partition:
    input: Path
    output: Path


def expand_inputs(pattern: str) -> list[Path]:
    """The files of a glob (``data/*.parquet``), a directory (its Parquet, else CSV files)
    or one file; sorted, so that partitions and outputs keep a stable order."""
    from nnspec_runtime.dask.partitions import FORMATS

    path = Path(pattern)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FORMATS and p.is_file())
        formats = {FORMATS[p.suffix.lower()] for p in files}
        if len(formats) > 1:  # a directory of both: Parquet is the data, CSV some export
            files = [p for p in files if FORMATS[p.suffix.lower()] == "parquet"]
    elif glob.has_magic(pattern):
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    else:
        files = [path] if path.exists() else []
        if files:  # one named file: a FIFO or a device is refused with what it is
            check_regular_file(path, "input file")
    if not files:
        raise DataError(
            f"{pattern}: no input files found; expected a Parquet or CSV file, a glob such "
            "as 'data/*.parquet' (quoted, so that nnspec expands it) or a directory of them"
        )
    bad = [p for p in files if p.suffix.lower() not in FORMATS]
    if bad:
        raise DataError(
            f"{bad[0]}: expected Parquet (.parquet, .pq) or CSV (.csv) inputs, got "
            f"{bad[0].suffix or 'a file without an extension'}"
        )
    return files


def plan_partitions(inputs: list[Path], out_dir: Path) -> list[Partition]:
    """One output per input, named after it, in ``out_dir`` (same format)."""
    seen: dict[str, Path] = {}
    parts = []
    for p in inputs:
        out = out_dir / p.name
        if p.name in seen:
            raise DataError(
                f"{p}: has the same file name as {seen[p.name]}, so both would be written to "
                f"{out}; expected input files with distinct names"
            )
        if out.resolve() == p.resolve():
            raise DataError(f"{p}: the output {out} would overwrite its input; pick another -o")
        seen[p.name] = p
        parts.append(Partition(p, out))
    return parts


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare_output(out_dir: Path, record: dict, resume: bool) -> None:
    """Create ``out_dir`` and write its manifest (the model and options the outputs belong
    to); with ``resume``, refuse a directory that holds another run's outputs."""
    from .. import atomic

    atomic.make_directory(out_dir, "the outputs (-o)")
    manifest = out_dir / MANIFEST
    if resume and manifest.exists():
        try:
            old = json.loads(manifest.read_text())
        except (OSError, ValueError):
            old = None
        if old != record:
            raise DataError(
                f"{manifest}: the outputs in {out_dir} were written by another run (model "
                f"sha256 {str((old or {}).get('model_sha256'))[:12]}, keep "
                f"{(old or {}).get('keep')}), expected model sha256 "
                f"{record['model_sha256'][:12]}, keep {record['keep']}; use another -o, or "
                "rerun without --resume to score everything again"
            )
    atomic.write_text(manifest, json.dumps(record, indent=2) + "\n")


def is_complete(part: Partition) -> bool:
    """An output written by ``score_file`` exists only whole (it is renamed into place after
    an fsync); a Parquet one must also have a readable footer with the input's row count."""
    from nnspec_runtime.dask.partitions import row_count

    if not part.output.is_file():
        return False
    if part.output.suffix.lower() == ".csv":
        return part.output.stat().st_size > 0
    want, got = row_count(part.input), row_count(part.output)
    return got is not None and (want is None or want == got)


def _progress(total: int, enabled: bool | None):
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="partition",
        desc="scoring",
        disable=(not sys.stderr.isatty()) if enabled is None else not enabled,
        leave=False,
    )


def _clean_staged(parts: list[Partition]) -> None:
    """Temporary files of tasks that died (a killed worker cannot remove its own)."""
    for part in parts:
        for tmp in part.output.parent.glob(f".{part.output.name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def score_local(
    parts, model_path: Path, keep: list[str], progress=None, device: str = "cpu"
) -> list[dict]:
    """Every partition in this process, in order: onnxruntime's default threads (all cores)."""
    from nnspec_runtime.dask import score_file

    results = []
    with _progress(len(parts), progress) as bar:
        for part in parts:
            results.append(
                score_file(part.input, part.output, model_path, keep=keep, device=device)
            )
            bar.update()
    return results


def score_dask(
    client, parts, model_path: Path, keep: list[str], progress=None, device: str = "cpu"
) -> list[dict]:
    """One Dask task per partition; results in partition order. A task that raises (bad
    data) stops the run with its error; a worker that dies has its tasks retried by Dask."""
    from distributed import as_completed

    from nnspec_runtime.dask import cluster_threads, score_file

    threads = cluster_threads(client)
    futures = []
    for i, part in enumerate(parts):
        # One thread count for the whole run: the smallest of the workers' shares, since a
        # retried task may land on any worker (a map by address would be stale after a restart).
        futures.append(
            client.submit(
                score_file,
                str(part.input.resolve()),
                str(part.output.resolve()),
                str(model_path.resolve()),
                keep=keep,
                threads=min(threads.values()) if threads else None,
                device=device,
                key=f"nnspec-score-{i}-{part.input.name}-{time.time_ns()}",
                pure=False,
            )
        )
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[dict | None] = [None] * len(parts)
    try:
        with _progress(len(parts), progress) as bar:
            for future in as_completed(futures):
                if future.status == "error":
                    error = future.exception()
                    if isinstance(error, (DataError, EngineError)) or _is_user_error(error):
                        raise error
                    raise EngineError(
                        f"{parts[index[future.key]].input}: the Dask task failed: "
                        f"{type(error).__name__}: {error}"
                    )
                results[index[future.key]] = future.result()
                bar.update()
    finally:
        for f in futures:
            f.cancel()
    return results


def _is_user_error(error: BaseException) -> bool:
    from nnspec_runtime import DeviceError, RuntimeModelError

    return isinstance(error, (RuntimeModelError, DeviceError))


def score_partitions(
    parts: list[Partition],
    model_path: Path,
    keep: list[str],
    *,
    engine: str = "local",
    client=None,
    resume: bool = False,
    progress: bool | None = None,
    device: str = "cpu",
) -> dict:
    """Score ``parts`` (skipping complete outputs with ``resume``); a summary dict with the
    per-partition results, the partitions skipped and the wall time."""
    t0 = time.perf_counter()
    todo = [p for p in parts if not (resume and is_complete(p))]
    if engine == "dask":
        results = score_dask(client, todo, model_path, keep, progress, device) if todo else []
    else:
        results = score_local(todo, model_path, keep, progress, device)
    _clean_staged(parts)
    return {
        "scored": todo,
        "skipped": len(parts) - len(todo),
        "results": results,
        "rows": sum(r["rows"] for r in results),
        "seconds": time.perf_counter() - t0,
    }
