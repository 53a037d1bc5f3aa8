"""``nnspec predict MODEL 'data/*.parquet' -o out/ [--engine local|dask]``: one output file
per input file, in this process (``local``, the default) or on a Dask cluster.

Chosen by ``predict`` when ``--engine`` is given or the input is a glob, a directory or a
Parquet file; the single-file CSV/NPY ``predict`` stays as it was.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

from ..errors import DataError


def add_arguments(s) -> None:
    """The options of partitioned scoring, on the ``predict`` subparser."""
    from .device_options import positive_int

    s.add_argument(
        "--engine",
        choices=["local", "dask"],
        help="score a glob or directory of Parquet/CSV files into one output per file in the "
        "directory -o: local (this process, the default for such inputs) or dask (a local "
        'cluster, or --scheduler); needs pip install "nnspec[dask]"',
    )
    s.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: the address of a running Dask scheduler (tcp://host:8786)",
    )
    s.add_argument(
        "--workers",
        type=positive_int,
        help="with --engine dask and no --scheduler: worker processes of the local cluster "
        "(default: one per core)",
    )
    s.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="COL",
        help="copy this input column (an id, a key) into the outputs, before the predictions; "
        "repeat for several",
    )
    s.add_argument(
        "--resume",
        action="store_true",
        help="skip partitions whose output is already complete (from an interrupted run)",
    )


def wants_partitions(args) -> bool:
    """Whether ``predict`` should score partitions rather than one file."""
    from nnspec_runtime.dask.partitions import FORMATS

    if args.engine is not None or glob.has_magic(args.input) or Path(args.input).is_dir():
        return True
    if FORMATS.get(Path(args.input).suffix.lower()) != "parquet" or not args.output:
        return False
    # One Parquet file: to a directory (-o out/) it is one partition, Parquet out; to a CSV
    # file or standard output it is the single-file predict.
    out = Path(args.output)
    return args.output != "-" and (out.is_dir() or out.suffix.lower() not in {".csv", ".txt"})


def predict_partitions(args) -> int:
    from ..engines import scoring
    from ..engines.cluster import EngineError, dask_client, describe, require_distributed
    from .device_options import open_model

    engine = args.engine or "local"
    if engine != "dask" and (args.scheduler or args.workers):
        raise EngineError("--scheduler and --workers need --engine dask")
    if args.scheduler and args.workers:
        raise EngineError(
            "--workers starts a local cluster and --scheduler uses an existing one: give one"
        )
    if not args.output:
        raise DataError(
            f"{args.input}: partitioned scoring writes one file per input: expected -o DIR"
        )
    if engine == "dask":
        require_distributed()  # before anything is read: say how to install it
    inputs = scoring.expand_inputs(args.input)
    parts = scoring.plan_partitions(inputs, Path(args.output))
    model = open_model(args)  # a model that will not open fails here, not on every worker
    _check_columns(inputs, model, args.keep)
    model_path = Path(args.model)
    record = {
        "model": str(model_path.resolve()),
        "model_sha256": scoring.file_sha256(model_path),
        "keep": list(args.keep),
    }
    scoring.prepare_output(Path(args.output), record, args.resume)
    if engine == "dask" and args.resume and all(scoring.is_complete(p) for p in parts):
        engine, where = "local", "nothing left to score"  # no cluster to start for nothing
    if engine == "dask":
        with dask_client(args.scheduler, args.workers) as client:
            where = describe(client)
            summary = scoring.score_partitions(
                parts,
                model_path,
                args.keep,
                engine="dask",
                client=client,
                resume=args.resume,
                device=args.device,
            )
    else:
        if args.engine != "dask":
            where = f"this process, device {model.device} ({model.provider})"
        summary = scoring.score_partitions(
            parts, model_path, args.keep, resume=args.resume, device=args.device
        )
    skipped = f", {summary['skipped']} already complete" if summary["skipped"] else ""
    print(
        f"wrote {len(summary['scored'])} of {len(parts)} partitions ({summary['rows']:,} rows"
        f"{skipped}) to {args.output} in {summary['seconds']:.2f} s: {where}",
        file=sys.stderr,
    )
    return 0


def _check_columns(inputs: list[Path], model, keep: list[str]) -> None:
    """Every input has the model's feature columns and the --keep ones: checked from the
    footers and headers before any partition is scored."""
    from nnspec_runtime.dask.partitions import input_schema

    want = [*(model.feature_names or []), *keep]
    for path in inputs:
        names = set(input_schema(path).names)
        missing = [c for c in want if c not in names]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise DataError(
                f"{path}: column(s) {shown} not found; expected the model's feature columns "
                f"{'and the --keep columns ' if keep else ''}by name (a header row for CSV)"
            )
