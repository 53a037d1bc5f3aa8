"""``nnspec plot {history,fit,regions,filters,activations}`` and ``nnspec train --plots DIR``.

Only argparse here at import time: the CLI builds its parser from this module on every run,
and ``nnspec validate`` must start fast, so matplotlib, onnx and onnxruntime are imported when a
plot is drawn.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DATA_HELP = (
    "data points to draw: a CSV with a header row (the model's feature columns, and its target "
    "column to colour them), an .npz (x, y), an .npy of inputs, or a spec .yaml whose data to "
    "use (default: the data of the spec embedded in the model)"
)


def _dpi(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 10 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"expected a number from 10 to 1000, got {text!r}")
    return value


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    """The plot kinds, each with ``-o OUT.png|.svg``, under ``nnspec plot``."""
    sub = parser.add_subparsers(dest="plot", required=True, metavar="PLOT")

    def kind(name: str, help: str, source: str, source_help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help, description=help)
        s.add_argument(source, help=source_help)
        s.add_argument("-o", "--output", required=True, help="image to write: .png or .svg")
        s.add_argument(
            "--dpi", type=_dpi, default=100, help="pixels per inch of a PNG (default: 100)"
        )
        return s

    kind(
        "history",
        "training and validation loss and metric per epoch, best epoch marked",
        "metrics",
        "metrics JSON written by nnspec train --metrics",
    )
    s = kind(
        "fit",
        "a 1-input regression model: the data, the prediction, and each hidden unit's share "
        "of it (activation times output weight)",
        "model",
        ".onnx file written by nnspec",
    )
    s.add_argument("--data", metavar="FILE", help=DATA_HELP)
    s = kind(
        "regions",
        "a classifier's decision regions over two input features, with the data points",
        "model",
        ".onnx file written by nnspec",
    )
    s.add_argument("--data", metavar="FILE", help=DATA_HELP)
    s.add_argument(
        "--features",
        nargs=2,
        metavar=("X", "Y"),
        help="the two input features to plot (needed when the model has more than two)",
    )
    s.add_argument(
        "--fix",
        action="append",
        metavar="NAME=VALUE",
        help="value of a feature that is not plotted (repeatable; default: its mean over the data)",
    )
    s = kind(
        "filters",
        "a ConvNet's first conv2d layer's filters as an image grid",
        "model",
        ".onnx file written by nnspec",
    )
    s.add_argument("--layer", help="the conv2d layer to show (default: the first)")
    s = kind(
        "activations",
        "a ConvNet's activation maps (each conv2d and pooling layer's output) for one image",
        "model",
        ".onnx file written by nnspec",
    )
    which = s.add_mutually_exclusive_group()
    which.add_argument(
        "--index",
        type=int,
        default=0,
        metavar="N",
        help="the N-th image of the model's test split (default: 0)",
    )
    which.add_argument("--image", metavar="FILE.npy", help="an image of the model's input shape")


def plot_command(args) -> int:
    """Draw the plot that ``args`` (parsed by ``add_subcommands``) asks for and write it."""
    from ..atomic import check_not_input
    from .common import check_output, require_matplotlib, save_figure

    check_output(args.output)  # a wrong suffix fails before any work
    source = getattr(args, "model", None) or getattr(args, "metrics", None)
    check_not_input({"plot": args.output}, {"input": source, "data": getattr(args, "data", None)})
    require_matplotlib()
    if args.plot == "history":
        from .history import plot_history

        fig = plot_history(args.metrics, dpi=args.dpi)
    elif args.plot == "fit":
        from .fit import plot_fit

        fig = plot_fit(args.model, args.data, dpi=args.dpi)
    elif args.plot == "regions":
        from .regions import parse_fix, plot_regions

        fig = plot_regions(
            args.model,
            args.data,
            features=args.features,
            fix=parse_fix(args.fix),
            dpi=args.dpi,
        )
    elif args.plot == "activations":
        from .activations import plot_activations

        fig = plot_activations(args.model, index=args.index, image=args.image, dpi=args.dpi)
    else:
        from .filters import plot_filters

        fig = plot_filters(args.model, layer=args.layer, dpi=args.dpi)
    save_figure(fig, args.output)
    print(f"wrote {args.output}")
    return 0


def prepare_plot_directory(directory: str | Path) -> Path:
    """Before training with ``--plots DIR``: matplotlib is there and DIR can be written."""
    from ..atomic import make_directory
    from .common import require_matplotlib

    require_matplotlib()
    return make_directory(directory, "the plots (--plots)")


def write_plots(directory: str | Path, model: str | Path, metrics: dict, spec) -> list[str]:
    """After ``nnspec train --plots DIR``: every plot that applies to the model, as PNGs in
    ``directory``. Returns one line per plot: the file written, or why it was skipped.

    ``spec`` is the spec as loaded from its file, so that its relative data paths resolve.
    """
    from ..onnxio.read import model_io, read_model
    from .activations import plot_activations
    from .common import load_samples, save_figure
    from .filters import conv_layers, plot_filters
    from .fit import plot_fit
    from .history import plot_history
    from .regions import plot_regions

    directory = Path(directory)
    contents = read_model(model)
    io = model_io(contents, spec)
    flat = len(io.shape) == 1
    samples = None
    if flat and (
        (spec.task == "regression" and io.features == 1)
        or (spec.task == "classification" and io.features == 2)
    ):
        samples = load_samples(spec, io, None, model)
    plans = [("history", lambda: plot_history(metrics), None)]
    if spec.task == "regression":
        why = None if flat and io.features == 1 else f"the model has {io.features} inputs, not 1"
        plans.append(("fit", lambda: plot_fit(model, samples), why))
    else:
        why = None
        if not flat:
            why = "the model takes images"
        elif io.features != 2:
            why = (
                f"the model has {io.features} input features; draw two of them with nnspec "
                f"plot regions {model} --features A B -o regions.png"
            )
        plans.append(("regions", lambda: plot_regions(model, samples), why))
    if conv_layers(spec):
        plans.append(("filters", lambda: plot_filters(model), None))
        plans.append(("activations", lambda: plot_activations(model), None))
    else:
        plans.append(("filters", None, "no conv2d layer"))
    lines = []
    for name, draw, why in plans:
        if why is not None:
            lines.append(f"skipped plot {name}: {why}")
            continue
        path = directory / f"{name}.png"
        save_figure(draw(), path)
        lines.append(f"wrote {path}")
    return lines
