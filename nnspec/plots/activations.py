"""``nnspec plot activations MODEL.onnx [--index N | --image FILE.npy]``: a ConvNet's
activation maps for one input image: the response of each filter at each patch.

The NumPy network is rebuilt from the model (``onnxio.read.load_network``: its weights and
standardization, in float64) and run layer by layer on the one image, keeping the output of
every conv2d and pooling layer: (channels, height, width) each, one panel per channel, on one
colour scale per layer (so that channels of a layer compare), with the input beside them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .common import DPI, PlotError, figure, load_samples, require_matplotlib

MAP_KINDS = ("conv2d", "maxpool2d", "avgpool2d")
MAX_CHANNELS = 32  # per layer; AlexNet's 384 maps would be stamps


def _image_from_file(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """One image of ``shape`` (channels, height, width) from an .npy: that shape, (height,
    width) for one channel, a batch of one, or the flat features."""
    from ..data.predict_inputs import read_inputs

    if path.suffix.lower() != ".npy":
        raise DataError(f"--image {path}: expected a .npy array, got '{path.suffix}'")
    x = read_inputs(path, None, None)
    size = math.prod(shape)
    if x.size != size:
        raise DataError(
            f"--image {path}: has shape {x.shape} ({x.size} values); the model takes one image "
            f"of {shape} ({size} values): expected (channels, height, width), (height, width) "
            "for one channel, or a batch of one"
        )
    return x.reshape(shape).astype(np.float64)


def _image_from_data(spec, io, model, index: int) -> tuple[np.ndarray, str]:
    samples = load_samples(spec, io, None, model)
    if samples is None:
        raise PlotError(
            f"{model}: its spec names no data to take an image from; pass one with --image FILE.npy"
        )
    rows = np.flatnonzero(samples.test) if samples.test is not None else np.arange(len(samples.x))
    part = "test split" if samples.test is not None else "data"
    if not 0 <= index < len(rows):
        raise PlotError(
            f"--index {index}: the {part} of {samples.source} has {len(rows)} images; expected "
            f"0 to {len(rows) - 1}"
        )
    row = rows[index]
    what = f"{part} image {index} of {samples.source}"
    if samples.y is not None and io.class_names:
        what += f", a '{io.class_names[int(samples.y[row])]}'"
    return samples.x[row].reshape(io.shape).astype(np.float64), what


def activation_maps(network, image: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(layer name, kind, maps (channels, height, width)) of each conv2d and pooling layer,
    for one raw ``image`` (channels, height, width)."""
    h = network.scale_x(image[None])
    out = []
    spec = network.spec
    for layer, layer_spec, name in zip(
        network.layers, spec.layers, spec.layer_names(), strict=True
    ):
        h = layer.forward(h)
        if layer_spec.kind in MAP_KINDS:
            out.append((name, layer_spec.kind, h[0]))
    return out


def plot_activations(
    model: str | Path,
    *,
    index: int = 0,
    image: str | Path | None = None,
    dpi: float = DPI,
):
    """Figure: the input image, and for each conv2d and pooling layer its maps (at most
    ``MAX_CHANNELS`` per layer) on the layer's own colour scale. The image is the
    ``index``-th of the model's test split (its spec's data), or ``image`` (an .npy)."""
    require_matplotlib()
    from ..onnxio.read import load_network, model_io

    network, contents = load_network(model)
    spec = contents.spec()
    io = model_io(contents, spec)
    if len(io.shape) != 3 or not any(la.kind in MAP_KINDS for la in spec.layers):
        raise PlotError(
            f"{model}: has no conv2d or pooling layer over images; plot activations is for "
            f"ConvNets (layers: {', '.join(spec.layer_names())})"
        )
    if image is not None:
        x, what = _image_from_file(Path(image), io.shape), str(image)
    else:
        x, what = _image_from_data(spec, io, model, index)
    maps = activation_maps(network, x)
    probs = network.predict(x[None]).get("probabilities")
    if probs is not None:
        k = int(probs[0].argmax())
        name = io.class_names[k] if io.class_names else str(k)
        what += f"; predicted '{name}' ({probs[0, k]:.2f})"

    cols = [min(len(m), MAX_CHANNELS) for _, _, m in maps]
    per_row = [min(c, 8) for c in cols]
    rows = [math.ceil(c / r) for c, r in zip(cols, per_row, strict=True)]
    fig = figure(
        2.2 + 1.15 * max(per_row) + 0.9, max(3.0, 0.3 + sum(1.2 * r + 0.45 for r in rows)), dpi
    )
    left, right = fig.subfigures(1, 2, width_ratios=[2.2, 1.15 * max(per_row) + 0.9])
    ax = left.subplots()
    _show_input(ax, x)
    ax.set_title("input", fontsize="small")
    blocks = right.subfigures(len(maps), 1, height_ratios=[1.2 * r + 0.45 for r in rows])
    blocks = np.atleast_1d(blocks)
    for block, (name, kind, m), n, across, down in zip(
        blocks, maps, cols, per_row, rows, strict=True
    ):
        axes = block.subplots(down, across, squeeze=False)
        lo, hi = float(m[:n].min()), float(m[:n].max())
        shown = None
        for c, a in enumerate(axes.ravel()):
            a.set_xticks([])
            a.set_yticks([])
            if c >= n:
                a.set_visible(False)
                continue
            shown = a.imshow(
                m[c], cmap="viridis", vmin=lo, vmax=hi or lo + 1, interpolation="nearest"
            )
        more = f", first {n} of {len(m)} shown" if len(m) > n else ""
        c_, h_, w_ = m.shape
        block.suptitle(f"{name} ({kind}): {c_} × {h_} × {w_}{more}", fontsize="small")
        block.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.9, aspect=12)
    fig.suptitle(f"{spec.name}: activation maps for {what}", fontsize="medium")
    return fig


def _show_input(ax, x: np.ndarray) -> None:
    """One channel in grey, three as colour (stretched to [0, 1]), others side by side."""
    ax.set_xticks([])
    ax.set_yticks([])
    if x.shape[0] == 3:
        v = x.transpose(1, 2, 0)
        lo, hi = v.min(), v.max()
        ax.imshow((v - lo) / (hi - lo or 1.0), interpolation="nearest")
    else:
        ax.imshow(np.concatenate(list(x), axis=1), cmap="gray", interpolation="nearest")
