"""``nnspec plot fit MODEL.onnx``: a 1-input regression network's curve, built up in front of
the data from its hidden units.

The output layer is linear in the last hidden layer's activations h_j, and the exported graph
maps its output back to the target's units (``postprocess``: times the target's deviation,
plus its mean). So, for an identity output,

    prediction(x) = sum_j h_j(x) w_j s + (b s + m)

with w the output weights, b the output bias, s and m the target's scale and mean: each unit's
share h_j w_j s is a curve in the target's own units, and those curves plus the constant b s + m
add up to the prediction exactly. For mcycle's 1-10-1 network they are ten sigmoids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import DPI, PlotError, Samples, figure, label, load_samples, require_matplotlib

PREDICTION_COLOUR = "black"
TRAIN_COLOUR, TEST_COLOUR = "#1f77b4", "#d62728"


@dataclass
class FitComponents:
    """The prediction over ``x`` taken apart into the last hidden layer's units."""

    x: np.ndarray  # (points, 1) the inputs, raw
    units: np.ndarray  # (points, units, outputs): h_j(x) w_jk s_k, in the target's units
    offset: np.ndarray  # (outputs,): b_k s_k + m_k
    additive: bool  # the output activation is the identity: units + offset = prediction
    layer: str  # the layer whose units these are ("input" for a network without hidden layers)
    activation: str  # that layer's activation

    @property
    def total(self) -> np.ndarray:
        """(points, outputs): the sum of the units' shares and the offset."""
        return self.units.sum(axis=1) + self.offset


def fit_components(network, x: np.ndarray) -> FitComponents:
    """Each unit of the layer feeding the output layer: its activation times its output
    weight, scaled to the target's units, over the raw inputs ``x`` (points, 1)."""
    out = network.layers[-1]
    w = out.params.get("weight")
    if w is None or w.ndim != 2:
        raise PlotError("plot fit: expected a dense output layer")
    h = network.scale_x(np.asarray(x, dtype=network.dtype))
    for layer in network.layers[:-1]:
        h = layer.forward(h)
    h = h.reshape(len(h), -1)
    b = out.params.get("bias", np.zeros(w.shape[1], network.dtype))
    scale, mean = network.y_scale, network.y_mean
    feeding = [la for la in network.layers[:-1] if la.params]
    return FitComponents(
        x=np.asarray(x),
        units=h[:, :, None] * w[None] * scale,
        offset=b * scale + mean,
        additive=out.activation == "identity",
        layer=feeding[-1].name if feeding else "input",
        activation=getattr(feeding[-1], "activation", "identity") if feeding else "identity",
    )


def _grid(samples: Samples | None, network, points: int) -> np.ndarray:
    if samples is not None and len(samples.x):
        lo, hi = float(samples.x[:, 0].min()), float(samples.x[:, 0].max())
    else:  # no data: three deviations either side of the training mean
        m, s = float(network.x_mean.ravel()[0]), float(network.x_scale.ravel()[0])
        lo, hi = m - 3 * s, m + 3 * s
    pad = 0.05 * (hi - lo or 1.0)
    return np.linspace(lo - pad, hi + pad, points).reshape(-1, 1)


def plot_fit(
    model: str | Path, data=None, *, points: int = 400, dpi: float = DPI, device: str = "cpu"
):
    """Figure with one panel per regression target: the data (training and test points),
    the exported model's prediction (run by onnxruntime), and each hidden unit's share of it
    (activation times output weight, in the target's units) with the output bias.

    ``data``: ``Samples``, or a file (as ``--data`` takes it); default the model's spec data.
    """
    require_matplotlib()
    from nnspec_runtime import Model

    from ..onnxio.read import load_network

    network, contents = load_network(model)
    spec, io = network.spec, network.io
    if spec.task != "regression":
        raise PlotError(
            f"{model}: plot fit is for regression models; this one is a classifier (try "
            "nnspec plot regions)"
        )
    if len(io.shape) != 1 or io.features != 1:
        raise PlotError(
            f"{model}: plot fit needs a model with one input feature; this one takes "
            f"{io.features} ({', '.join(io.feature_names[:4])}{', ...' if io.features > 4 else ''})"
        )
    samples = load_samples(spec, io, data, model)
    x = _grid(samples, network, points)
    parts = fit_components(network, x)
    prediction = Model(model, device=device).run(x)["prediction"]

    n_out = io.outputs
    fig = figure(9, 5 * n_out if n_out > 1 else 5.5, dpi)
    axes = fig.subplots(n_out, 1, squeeze=False)[:, 0]
    n_units = parts.units.shape[1]
    cmap = _unit_colours(n_units)
    for k, ax in enumerate(axes):
        for j in range(n_units):
            ax.plot(
                x[:, 0],
                parts.units[:, j, k],
                color=cmap[j],
                linewidth=1,
                alpha=0.85,
                label=f"unit {j}" if n_units <= 12 else None,
            )
        what = "output bias" + (" + target mean" if spec.preprocess.standardize_target else "")
        ax.axhline(parts.offset[k], color="0.4", linestyle=":", linewidth=1.2, label=what)
        if samples is not None and samples.y is not None:
            _scatter(ax, samples, k)
        shown = "prediction (the sum)" if parts.additive else "prediction"
        ax.plot(x[:, 0], prediction[:, k], color=PREDICTION_COLOUR, linewidth=2.5, label=shown)
        ax.set_xlim(x[0, 0], x[-1, 0])
        ax.set_xlabel(label(spec, io.feature_names[0]))
        ax.set_ylabel(label(spec, io.target_names[k]))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    unit_word = f"{n_units} {parts.activation} unit{'s' if n_units != 1 else ''}"
    how = "add up to" if parts.additive else "before the output activation make"
    fig.suptitle(
        f"{spec.name}: {unit_word} of {parts.layer}, each times its output weight, {how} the "
        "prediction"
    )
    return fig


def _unit_colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(j if n <= 10 else j / max(n - 1, 1)) for j in range(n)]


def _scatter(ax, samples: Samples, k: int) -> None:
    y = samples.y.reshape(len(samples.y), -1)[:, k]
    split = samples.test is not None
    test = samples.test if split else np.zeros(len(y), bool)
    for mask, colour, what in (
        (~test, TRAIN_COLOUR, "training data" if split else "data"),
        (test, TEST_COLOUR, "test data"),
    ):
        if mask.any():
            ax.scatter(
                samples.x[mask, 0],
                y[mask],
                s=16,
                color=colour,
                alpha=0.75,
                edgecolors="white",
                linewidths=0.5,
                label=what,
                zorder=3,
            )
