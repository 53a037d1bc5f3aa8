"""``nnspec bench MODEL``: throughput and latency of an exported model in onnxruntime.

The measuring is ``nnspec_runtime.bench`` (deploy-side, no nnspec needed); this module is the
command line around it, imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*")


def _bytes(text: str) -> int:
    """A byte count: 8589934592, 8GiB, 8G, 512MiB (powers of 1024)."""
    match = _BYTES.fullmatch(text.lower())
    value = float(match[1]) * _UNITS[match[2]] if match else 0
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(
            f"expected a number of bytes such as 8GiB, 512MiB or 1073741824, got {text!r}"
        )
    return int(value)


def _device_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a GPU number (0, 1, ...), got {text!r}")
    return int(text)


def add_device_arguments(s) -> None:
    """--device, --device-id, --strict, --no-tf32 and --gpu-mem-limit: how a command that
    runs a model opens it (predict, bench); ``open_model`` reads them."""
    s.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where onnxruntime runs the model (default: auto)",
    )
    s.add_argument(
        "--device-id",
        type=_device_id,
        default=0,
        help="which GPU, with --device cuda or auto (default: 0)",
    )
    s.add_argument(
        "--gpu-mem-limit",
        type=_bytes,
        help="the most GPU memory onnxruntime's arena may take, e.g. 8GiB (default: no limit)",
    )
    s.add_argument(
        "--strict",
        action="store_true",
        help="on CUDA, refuse the model unless every node runs on the GPU (no silent CPU fallback)",
    )
    s.add_argument(
        "--no-tf32",
        action="store_true",
        help="on CUDA, full float32 matrix products (onnxruntime uses TF32 by default, about "
        "1e-3 relative error)",
    )


def open_model(args, **options):
    """``nnspec_runtime.Model`` of ``args.model`` with the options of ``add_device_arguments``."""
    from nnspec_runtime import Model

    model = Model(
        args.model,
        device=args.device,
        device_id=args.device_id,
        gpu_mem_limit=args.gpu_mem_limit,
        strict=args.strict,
        use_tf32=not args.no_tf32,
        **options,
    )
    if model.fallback:
        # onnxruntime-gpu has logged its own lines above; this says what came of them.
        print(
            f"note: {args.model}: --device auto runs it on the CPU, because {model.fallback} "
            "(--device cpu does not try CUDA)",
            file=sys.stderr,
        )
    return model


def add_parser(sub) -> None:
    """The ``bench`` subcommand, on the subparsers of ``nnspec``."""
    s = sub.add_parser("bench", help="time an exported model: samples/s and latency percentiles")
    s.add_argument("model", help=".onnx file")
    add_device_arguments(s)
    s.add_argument(
        "--batch",
        type=_positive,
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
    s.add_argument("--repeats", type=_positive, default=30, help="timed calls (default: 30)")
    s.add_argument("--warmup", type=_positive, default=3, help="untimed calls first (default: 3)")
    s.add_argument(
        "--chunk-size", type=_positive, help="most rows per onnxruntime run (default: the model's)"
    )
    s.add_argument("--json", action="store_true", help="print the results as JSON")
    s.set_defaults(func=bench_command)


def bench_command(args) -> int:
    from nnspec_runtime.bench import PATHS, measure, table

    model = open_model(args, chunk_size=args.chunk_size)
    path = "iobinding" if args.iobinding else "run"
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
