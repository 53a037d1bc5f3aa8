"""``nnspec plot filters MODEL.onnx``: a ConvNet's first-layer filters, one panel each.

The weights of a conv2d layer are (filters, channels / groups, kh, kw), as ONNX ``Conv`` takes
them. One-channel filters are drawn on one diverging colour scale shared by all panels (white
is 0, so signs and relative strengths compare across filters); three-channel filters (RGB
images) as colour images, each stretched to its own range as is usual for them; filters of
other channel counts as their channels side by side.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .common import DPI, PlotError, figure, require_matplotlib


def conv_layers(spec) -> list[str]:
    """Names of the spec's conv2d layers, in order."""
    return [
        name
        for layer, name in zip(spec.layers, spec.layer_names(), strict=True)
        if layer.kind == "conv2d"
    ]


def _tile(w: np.ndarray) -> np.ndarray:
    """(channels, kh, kw) -> (kh, channels * (kw + 1) - 1) with a NaN column between them."""
    c, kh, kw = w.shape
    out = np.full((kh, c * (kw + 1) - 1), np.nan)
    for i in range(c):
        out[:, i * (kw + 1) : i * (kw + 1) + kw] = w[i]
    return out


def plot_filters(model: str | Path, *, layer: str | None = None, dpi: float = DPI):
    """Figure with one panel per filter of ``layer`` (default: the first conv2d layer)."""
    require_matplotlib()
    from matplotlib import colormaps

    from ..onnxio.read import read_model

    contents = read_model(model)
    spec = contents.spec()
    convs = conv_layers(spec)
    if not convs:
        raise PlotError(
            f"{model}: has no conv2d layer; plot filters is for ConvNets (layers: "
            f"{', '.join(spec.layer_names())})"
        )
    if layer is None:
        layer = convs[0]
    elif layer not in convs:
        raise PlotError(
            f"--layer {layer}: not a conv2d layer of {model}; its conv2d layers are "
            f"{', '.join(convs)}"
        )
    w = contents.array(f"{layer}.weight").astype(np.float64)
    n, c, kh, kw = w.shape
    rgb = c == 3

    # The grid whose panels come out largest (at most 1.4 inches high) within 12 x 11 inches;
    # among equals, the one nearest a 3:2 landscape.
    aspect = (c * (kw + 1) - 1) / kh if c not in (1, 3) else kw / kh

    def layout(cols: int) -> tuple[float, float]:
        rows = math.ceil(n / cols)
        height = min(1.4, 12 / (cols * aspect), 11 / rows)
        return round(height, 3), -abs(math.log(cols * aspect / rows / 1.5))

    cols = max(range(1, n + 1), key=layout)
    rows = math.ceil(n / cols)
    height = layout(cols)[0]
    colourbar = 0 if rgb else 1.0
    fig = figure(max(4.0, cols * height * aspect + colourbar), rows * height + 0.8, dpi)
    grid = fig.subplots(rows, cols, squeeze=False)
    for extra in grid.ravel()[n:]:
        fig.delaxes(extra)  # the grid's last row may not be full: one panel per filter
    axes = grid.ravel()[:n]
    limit = float(np.abs(w).max()) or 1.0
    # Grey (not white, which is a zero weight) between the channels of a tiled filter.
    cmap = colormaps["RdBu_r"].with_extremes(bad="#b0b0b0")
    image = None
    for f, ax in enumerate(axes):
        if rgb:
            # Each RGB filter stretched to [0, 1]: its colours, not its scale, are the point.
            v = w[f].transpose(1, 2, 0)
            lo, hi = v.min(), v.max()
            ax.imshow((v - lo) / (hi - lo or 1.0), interpolation="nearest")
        else:
            v = w[f, 0] if c == 1 else _tile(w[f])
            image = ax.imshow(v, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(f), fontsize="small")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="weight")
    shape = f"{c}×{kh}×{kw}"
    how = "" if c in (1, 3) else f" (its {c} input channels side by side)"
    fig.suptitle(f"{spec.name}: {layer}, {n} filters of {shape}{how}")
    return fig
