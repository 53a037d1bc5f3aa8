"""``nnspec plot regions MODEL.onnx``: a classifier's decision regions over two input features,
with the data points on top.

Each grid point is coloured by the class the exported model predicts there (onnxruntime runs
the whole grid in one call), paler where the model is less sure; the lines are the decision
boundaries. A model with more than two features is cut through: the two named features vary,
the others stay fixed (at the data's mean unless ``--fix`` sets them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import CLASS_COLOURS, DPI, PlotError, figure, label, load_samples, require_matplotlib


def parse_fix(items: list[str] | None) -> dict[str, float]:
    """``["petal_width=1.5"]`` -> ``{"petal_width": 1.5}``, or a clear error."""
    fixed = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            fixed[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise PlotError(f"--fix {item}: expected NAME=VALUE with a number, e.g. sepal_width=3")
    return fixed


def _choose(features: list[str] | None, names: list[str], model) -> tuple[int, int]:
    if features is None:
        if len(names) == 2:
            return 0, 1
        raise PlotError(
            f"{model}: the model has {len(names)} input features ({', '.join(names[:8])}"
            f"{', ...' if len(names) > 8 else ''}); name the two to plot with --features A B "
            "(the others stay at the data's mean, or as --fix NAME=VALUE sets them)"
        )
    if len(features) != 2 or features[0] == features[1]:
        raise PlotError(f"--features: expected two different feature names, got {features}")
    unknown = [f for f in features if f not in names]
    if unknown:
        raise PlotError(
            f"--features: unknown feature {', '.join(unknown)}; the model's features are "
            f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
        )
    return names.index(features[0]), names.index(features[1])


def _colours(n: int) -> np.ndarray:
    from matplotlib.colors import to_rgb

    if n <= len(CLASS_COLOURS):
        return np.array([to_rgb(c) for c in CLASS_COLOURS[:n]])
    from matplotlib import colormaps

    return np.array(colormaps["turbo"](np.linspace(0, 1, n))[:, :3])


def confidence_image(proba: np.ndarray, labels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] of shape (*grid, 3) from class probabilities (*grid, classes), the
    predicted labels (*grid) and one RGB colour per class (classes, 3).

    Colour of the predicted class, faded towards white where the model is unsure: at a
    confidence of 1/classes (a coin toss) it is 25% colour, at certainty 70%. The playground
    paints its regions with the same function."""
    k = proba.shape[-1]
    sure = (proba.max(axis=-1) - 1 / k) / (1 - 1 / k)
    strength = (0.25 + 0.45 * np.clip(sure, 0, 1))[..., None]
    return 1 - strength * (1 - colours[labels])


def plot_regions(
    model: str | Path,
    data=None,
    *,
    features: list[str] | None = None,
    fix: dict[str, float] | None = None,
    resolution: int = 300,
    dpi: float = DPI,
    device: str = "cpu",
):
    """Figure with one panel: the predicted class over a ``resolution`` x ``resolution`` grid
    of two input features (colour: class; lightness: the model's confidence), the decision
    boundaries, and the data points coloured by their class (circles: training split,
    triangles: test split).

    ``features``: the two to plot (needed when the model has more than two); ``fix``: values
    of the other features (default: their mean over the data). ``data``: ``Samples`` or a
    file (as ``--data`` takes it); default the model's spec data.
    """
    require_matplotlib()
    from nnspec_runtime import Model

    from ..onnxio.read import model_io, read_model

    contents = read_model(model)
    spec = contents.spec()
    io = model_io(contents, spec)
    if spec.task != "classification":
        raise PlotError(
            f"{model}: plot regions is for classifiers; this one is a regression model (try "
            "nnspec plot fit)"
        )
    if len(io.shape) != 1 or io.features < 2:
        what = "images" if len(io.shape) > 1 else f"{io.features} feature"
        raise PlotError(
            f"{model}: plot regions needs a model of two or more input features; this one "
            f"takes {what} (for a ConvNet, try nnspec plot filters)"
        )
    names = io.feature_names
    i, j = _choose(features, names, model)
    fix = dict(fix or {})
    for name in fix:
        if name not in names:
            raise PlotError(f"--fix {name}: unknown feature; the model's features are {names}")
        if name in (names[i], names[j]):
            raise PlotError(f"--fix {name}: is one of the two plotted features; fix another")
    samples = load_samples(spec, io, data, model)
    centre, spread, centre_what = _centre(samples, contents, io.features)
    values = np.array([fix.get(n, centre[k]) for k, n in enumerate(names)])

    def span(k):
        if samples is not None and len(samples.x):
            lo, hi = float(samples.x[:, k].min()), float(samples.x[:, k].max())
        else:
            lo, hi = centre[k] - 3 * spread[k], centre[k] + 3 * spread[k]
        pad = 0.08 * (hi - lo or 1.0)
        return lo - pad, hi + pad

    (x0, x1), (y0, y1) = span(i), span(j)
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.tile(values, (gx.size, 1))
    grid[:, i], grid[:, j] = gx.ravel(), gy.ravel()
    out = Model(model, device=device).run(grid)
    proba = out["probabilities"].reshape(resolution, resolution, -1)
    labels = out["label"].reshape(resolution, resolution)
    classes = io.class_names or [str(c) for c in range(proba.shape[-1])]
    colours = _colours(len(classes))

    k = len(classes)
    image = confidence_image(proba, labels, colours)

    fig = figure(7.5, 6, dpi)
    ax = fig.subplots()
    ax.imshow(image, origin="lower", extent=(x0, x1, y0, y1), aspect="auto", interpolation="none")
    for c in range(k):
        inside = (labels == c).astype(float)
        if 0 < inside.mean() < 1:
            ax.contour(gx, gy, inside, levels=[0.5], colors="0.15", linewidths=1)
    _points(ax, samples, i, j, classes, colours)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(label(spec, names[i]))
    ax.set_ylabel(label(spec, names[j]))
    _legend(ax, samples, classes, colours)
    title = f"{spec.name}: decision regions"
    others = [n for n in names if n not in (names[i], names[j])]
    if others:
        shown = ", ".join(
            f"{n} = {values[names.index(n)]:.3g}" + ("" if n in fix else f" ({centre_what})")
            for n in others[:4]
        )
        more = f" and {len(others) - 4} more" if len(others) > 4 else ""
        title += f"\nother features fixed: {shown}{more}"
    ax.set_title(title)
    return fig


def _centre(samples, contents, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Mean and deviation per feature, and what they are: of the data, else the training
    data's as the model's standardization keeps them, else 0 and 1."""
    if samples is not None and len(samples.x):
        return samples.x.mean(axis=0), samples.x.std(axis=0), "data mean"
    if "preprocess.mean" in contents.weight_names():
        return (
            contents.array("preprocess.mean").astype(float).ravel(),
            contents.array("preprocess.scale").astype(float).ravel(),
            "training mean",
        )
    return np.zeros(n), np.ones(n), "default"


def _points(ax, samples, i: int, j: int, classes: list[str], colours: np.ndarray) -> None:
    if samples is None:
        return
    test = samples.test if samples.test is not None else np.zeros(len(samples.x), bool)
    for mask, marker in ((~test, "o"), (test, "^")):
        if not mask.any():
            continue
        if samples.y is None:
            face = "0.5"
        else:
            face = colours[samples.y[mask]]
        ax.scatter(
            samples.x[mask, i],
            samples.x[mask, j],
            c=face,
            marker=marker,
            s=30,
            edgecolors="black",
            linewidths=0.6,
            zorder=3,
        )


def _legend(ax, samples, classes: list[str], colours: np.ndarray) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=colours[c], edgecolor="0.15", label=name) for c, name in enumerate(classes)
    ]
    if samples is not None:
        split = samples.test is not None
        kinds = [("o", "training data" if split else "data")]
        kinds += [("^", "test data")] if split and samples.test.any() else []
        handles += [
            Line2D(
                [],
                [],
                marker=m,
                linestyle="",
                markerfacecolor="white",
                markeredgecolor="black",
                label=what,
            )
            for m, what in kinds
        ]
    ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.85)
