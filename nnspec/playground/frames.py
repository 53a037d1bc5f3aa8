"""What the page draws, computed from the live network between two training steps.

A frame holds the metrics of the weights as they are now (training and test split), and the
pictures: for a classifier of two features the decision regions over a grid (coloured as
``nnspec plot regions`` colours them), for a regression of one input the fitted curve with
each hidden unit's share of it (as ``nnspec plot fit`` takes it apart); and for either a
small map per hidden unit of the first hidden layers, the Playground's neuron pictures.

Arrays travel as base64 of uint8: a 64 x 64 RGB region picture is 16 KB of text, so that 20
frames a second stay well under a megabyte a second.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..plots.common import CLASS_COLOURS, PlotError
from ..plots.fit import fit_components
from ..plots.regions import confidence_image
from ..training.checkpoint import layer_rngs
from ..training.loop import evaluate

GRID = 64  # region picture: GRID x GRID points
MAP_GRID = 32  # a hidden unit's map (every other point of the region grid)
CURVE_POINTS = 200  # a regression curve
MAX_MAP_LAYERS = 3  # the Playground shows a handful of layers of at most 8 units
MAX_MAP_UNITS = 16
# Where an activation's values sit, to centre its map: (middle, half range); None: by the
# map's own largest magnitude around zero.
_RANGES = {"tanh": (0.0, 1.0), "logistic": (0.5, 0.5)}


@contextmanager
def untouched(network) -> Iterator[None]:
    """Within the block, scoring may draw dropout masks and move batchnorm's running
    statistics (``loop.evaluate`` scores as the trainer does); afterwards the generators and
    statistics are as they were, so a watched run trains to the same bits as ``nnspec train``.
    """
    rngs = [g.bit_generator.state for g in layer_rngs(network).values()]
    state = {k: v.copy() for k, v in network.state().items()}
    try:
        yield
    finally:
        for g, saved in zip(layer_rngs(network).values(), rngs, strict=True):
            g.bit_generator.state = saved
        for k, v in network.state().items():
            v[...] = state[k]


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, np.uint8).tobytes()).decode("ascii")


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    return tuple(int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))


def class_colours(k: int) -> np.ndarray:
    """(k, 3) RGB in [0, 1]: matplotlib's tab10, as the plots use, repeated past ten."""
    return np.array([_rgb(CLASS_COLOURS[c % len(CLASS_COLOURS)]) for c in range(k)])


def _signed_byte(v: np.ndarray, activation: str) -> np.ndarray:
    """Values -> uint8 with 128 at the activation's middle, 1 and 255 at its ends."""
    middle, half = _RANGES.get(activation, (0.0, None))
    if half is None:
        half = float(np.abs(v).max()) or 1.0
    return np.clip(np.rint(128 + 127 * (v - middle) / half), 1, 255)


def _hidden_outputs(network, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(layer name, activation, outputs (points, units)) of each hidden dense layer, in
    order, from one forward pass over raw inputs ``x``; layers without units are skipped."""
    h = network.scale_x(np.asarray(x, dtype=network.dtype))
    found = []
    for layer in network.layers[:-1]:
        h = layer.forward(h)
        act = getattr(layer, "activation", None)
        if act is not None and h.ndim == 2:
            found.append((layer.name, act, h))
    return found


def bounds(x: np.ndarray) -> list[float]:
    """[x0, x1, y0, y1] (or [x0, x1] for one input): the data's range, padded 8%."""
    out = []
    for k in range(x.shape[1]):
        lo, hi = float(x[:, k].min()), float(x[:, k].max())
        pad = 0.08 * (hi - lo or 1.0)
        out += [lo - pad, hi + pad]
    return out


class FramePainter:
    """Paints frames for one run: the grid is fixed by the data, the network moves."""

    def __init__(self, network, splits):
        self.network, self.splits = network, splits
        parts = [p for p in (splits.train, splits.val, splits.test) if p is not None]
        x_all = np.concatenate([p.x.reshape(len(p.x), -1) for p in parts])
        self.features = x_all.shape[1]
        self.kind = None
        if network.task == "classification" and self.features == 2:
            self.kind = "regions"
            self.bounds = bounds(x_all)
            x0, x1, y0, y1 = self.bounds
            # Row 0 is the top of the picture (largest x2), as a canvas draws it.
            gx, gy = np.meshgrid(np.linspace(x0, x1, GRID), np.linspace(y1, y0, GRID))
            self.grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
            self.colours = class_colours(network.io.outputs if network.io.outputs > 1 else 2)
        elif network.task == "regression" and self.features == 1:
            self.kind = "fit"
            self.bounds = bounds(x_all)
            self.grid = np.linspace(*self.bounds, CURVE_POINTS).reshape(-1, 1)

    def points(self) -> dict:
        """The data, once per run: inputs and targets of the training and test splits."""
        out = {}
        for name in ("train", "test"):
            part = getattr(self.splits, name)
            if part is None:
                out[name] = {"x": [], "y": []}
                continue
            y = part.y.reshape(len(part.y), -1)[:, 0] if part.y.ndim > 1 else part.y
            out[name] = {
                "x": np.round(part.x.reshape(len(part.x), -1), 5).tolist(),
                "y": np.round(y.astype(float), 5).tolist(),
            }
        return out

    def metrics(self) -> dict:
        """Loss and metric of the training and test splits, as ``nnspec train`` scores its
        test split, for the weights as they are now."""
        out = {}
        with untouched(self.network):
            for name in ("train", "test"):
                part = getattr(self.splits, name)
                if part is not None:
                    scores = evaluate(self.network, part)
                    out[name] = {k: _finite(v) for k, v in scores.items()}
        return out

    def paint(self) -> dict:
        """The pictures of the network as it is now (``kind`` None: metrics only)."""
        if self.kind == "regions":
            return self._regions()
        if self.kind == "fit":
            return self._fit()
        return {}

    def _maps(self, hidden, shape) -> list[dict]:
        maps = []
        for name, act, h in hidden[:MAX_MAP_LAYERS]:
            units = []
            for j in range(min(h.shape[1], MAX_MAP_UNITS)):
                v = h[:, j].reshape(shape)
                if len(shape) == 2:
                    v = v[::2, ::2]  # MAP_GRID x MAP_GRID
                else:
                    v = v[:: max(1, len(v) // 50)]
                units.append(b64(_signed_byte(v.astype(np.float64), act)))
            maps.append(
                {"layer": name, "activation": act, "units": units, "total": int(h.shape[1])}
            )
        return maps

    def _regions(self) -> dict:
        net = self.network
        hidden = _hidden_outputs(net, self.grid)
        proba = net.predict(self.grid)["probabilities"].astype(np.float64)
        labels = proba.argmax(axis=1)
        image = confidence_image(proba, labels, self.colours)
        return {
            "regions": b64(np.rint(255 * image.reshape(GRID, GRID, 3))),
            "size": GRID,
            "maps": self._maps(hidden, (GRID, GRID)),
            "map_size": MAP_GRID,
        }

    def _fit(self) -> dict:
        net = self.network
        hidden = _hidden_outputs(net, self.grid)
        pred = net.forward(self.grid).astype(np.float64)[:, 0]
        out = {
            "curve": np.round(pred, 5).tolist(),
            "maps": self._maps(hidden, (CURVE_POINTS,)),
        }
        if hidden:
            try:
                parts = fit_components(net, self.grid)
            except PlotError:  # an output layer that is not dense: the curve alone
                return out
            out["units"] = np.round(parts.units[:, :MAX_MAP_UNITS, 0].T, 5).tolist()
        return out


def _finite(v: float) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None
