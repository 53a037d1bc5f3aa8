"""``--opset`` and ``--target-onnxruntime``, shared by ``nnspec compile`` and ``nnspec train``."""

from __future__ import annotations

import argparse


def _opset(text: str) -> int:
    from ..spec.targets import MAX_OPSET, MIN_OPSET

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not MIN_OPSET <= value <= MAX_OPSET:
        raise argparse.ArgumentTypeError(
            f"expected an opset from {MIN_OPSET} to {MAX_OPSET}, got {text!r}"
        )
    return value


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--opset",
        type=_opset,
        metavar="N",
        help="ONNX opset of the default domain, 13 to 22 (overrides the spec's export.opset); "
        "the IR version is the lowest that the opset needs",
    )
    p.add_argument(
        "--target-onnxruntime",
        metavar="VERSION",
        help="write the highest opset that this onnxruntime release runs (e.g. 1.17: opset "
        "20, IR 9), for deploying to an older onnxruntime; with --opset, checks that the "
        "release runs it",
    )


def apply_export_arguments(spec, args):
    """The spec with the export target that ``--opset``/``--target-onnxruntime`` ask for."""
    from .. import pipeline

    return pipeline.retarget(spec, opset=args.opset, onnxruntime=args.target_onnxruntime)
