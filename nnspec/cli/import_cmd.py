"""``nnspec import MODEL.onnx -o SPEC.yaml``: a spec and its weights from a foreign model
(PyTorch's exporters, skl2onnx, nnspec's own), checked against the model before writing."""

from __future__ import annotations

import sys


def _stage(message: str) -> None:
    print(f"{message} ...", file=sys.stderr, flush=True)


def _import(args) -> int:
    from .. import pipeline
    from ..onnxio.import_model import table
    from .outputs import check_outputs

    # --force may overwrite the spec and weights, never the model being imported.
    weights = args.output.rsplit(".", 1)[0] + ".weights.npz"
    check_outputs({"spec": args.output, "weights": weights}, {"model": args.model})
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    # On a terminal, the stages of a long import (AlexNet: about 15 s) on stderr.
    say = None if args.quiet or not sys.stderr.isatty() else _stage
    imported = pipeline.import_onnx(
        args.model, args.output, task=args.task, classes=classes, force=args.force, say=say
    )
    check = imported.check
    if not args.quiet:
        print(f"{args.model}: {len(imported.graph.nodes)} nodes")
        print(table(imported))
        for note in imported.notes:
            print(f"note: {note}")
        print(
            f"check (onnxruntime, source vs compiled spec, {check['samples']} seeded inputs): "
            f"max abs err {check['max_abs_err']:.3g}, max rel err {check['max_rel_err']:.3g}"
            + (f"; labels ({check['labels']}) equal" if "labels" in check else "")
        )
        print(
            f"wrote {args.output} ({imported.task}, {len(imported.state.layers)} layers, "
            f"{imported.param_count():,} parameters) and {weights}"
        )
    return 0


def add_parser(sub) -> None:
    """The ``import`` subcommand, on the subparsers of ``nnspec``."""
    s = sub.add_parser(
        "import",
        help="turn an ONNX model (PyTorch, scikit-learn, nnspec) into a spec and weights to "
        "fine-tune",
        description="Write a spec that reproduces MODEL, with its weights in "
        "<spec stem>.weights.npz beside it (init: {from: ...}). The spec is compiled and "
        "checked against MODEL in onnxruntime (rtol 1e-4, atol 1e-5) before anything is "
        "written. To fine-tune: add data, set trainable: false on the layers to keep, and "
        "replace the last layer.",
    )
    s.add_argument("model", help="the .onnx file (untrusted: checked before it is read)")
    s.add_argument("-o", "--output", required=True, help="the spec (.yaml) to write")
    s.add_argument(
        "--task",
        choices=["classification", "regression"],
        help="for a model whose output is a linear layer's (logits): classification adds a "
        "softmax, regression (the default) keeps the raw outputs; a model ending in Softmax, "
        "or with a label output, is a classifier",
    )
    s.add_argument(
        "--classes", metavar="A,B,...", help="class names (default: from the model, else 0..n-1)"
    )
    s.add_argument("--force", action="store_true", help="overwrite the spec and weights files")
    s.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    s.set_defaults(func=_import)
