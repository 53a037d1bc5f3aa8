"""``nnspec bench MODEL``: throughput and latency of an exported model in onnxruntime.

The measuring is ``nnspec_runtime.bench`` (deploy-side, no nnspec needed); this module is the
command line around it, imported only when the command runs.
"""

from __future__ import annotations

import json

from .device_options import add_device_arguments, open_model, positive_int


def add_parser(sub) -> None:
    """The ``bench`` subcommand, on the subparsers of ``nnspec``."""
    s = sub.add_parser("bench", help="time an exported model: samples/s and latency percentiles")
    s.add_argument("model", help=".onnx file")
    add_device_arguments(s)
    s.add_argument(
        "--batch",
        type=positive_int,
        nargs="+",
        default=[1, 256, 4096],
        metavar="N",
        help="rows per call, one or more (default: 1 256 4096)",
    )
    s.add_argument(
        "--iobinding",
        action="store_true",
        help="inputs and outputs stay on the device (onnxruntime IOBinding); only the runs are "
        "timed. Default: Model.run with NumPy in and out",
    )
    s.add_argument("--repeats", type=positive_int, default=30, help="timed calls (default: 30)")
    s.add_argument(
        "--warmup", type=positive_int, default=3, help="untimed calls first (default: 3)"
    )
    s.add_argument(
        "--chunk-size",
        type=positive_int,
        help="most rows per onnxruntime run (default: the model's)",
    )
    s.add_argument("--json", action="store_true", help="print the results as JSON")
    s.set_defaults(func=bench_command)


def bench_command(args) -> int:
    from nnspec_runtime.bench import PATHS, measure, table

    from .. import untrusted
    from ..errors import NnspecError

    model = open_model(args, chunk_size=args.chunk_size)
    path = "iobinding" if args.iobinding else "run"
    for batch in args.batch:
        # The input batch, its float32 copy and the outputs: refused before it is allocated.
        row = 4 * (model.n_features or 1)
        untrusted.check_allocation(
            batch * (2 * row + 64), f"--batch {batch} ({batch:,} rows of {row} bytes)", NnspecError
        )
    results = [
        measure(model, batch, path, repeats=args.repeats, warmup=args.warmup)
        for batch in args.batch
    ]
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return 0
    tf32 = f", TF32 {'off' if args.no_tf32 else 'on'}" if model.device == "cuda" else ""
    print(
        f"{args.model}: {model.device} ({model.provider}{tf32}), {PATHS[path]}, "
        f"{args.repeats} timed calls after {args.warmup} warm-up"
    )
    print(table(results))
    return 0
