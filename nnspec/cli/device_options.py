"""How a command that runs an exported model opens it: the device options (``--device``,
``--device-id``, ``--strict``, ``--no-tf32``, ``--gpu-mem-limit``) shared by ``predict`` and
``bench``, and ``open_model`` that turns them into an ``nnspec_runtime.Model``."""

from __future__ import annotations

import argparse
import re
import sys


def positive_int(text: str) -> int:
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
