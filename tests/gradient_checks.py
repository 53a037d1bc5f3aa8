"""Float64 central differences, the independent reference every analytic gradient is checked
against, and the small helpers the gradient tests share."""

from __future__ import annotations

import numpy as np

# Step of the central differences: with float64 the truncation error is O(H**2), about 1e-12,
# and the rounding error O(eps * |loss| / H), about 1e-10 for losses near 1: far under the 1e-6
# relative tolerance wherever the gradient itself is not that small.
H = 1e-6
# A gradient that is zero in exact arithmetic (a conv bias right before batchnorm, which takes
# the mean out) comes out of central differences as rounding noise of about 1e-10; both sides
# under this bound agree that it is zero, where a relative error would compare two noises.
ZERO_GRADIENT = 1e-8


def central_differences(f, array: np.ndarray) -> np.ndarray:
    """d f() / d array, entry by entry, perturbing ``array`` in place (then restoring it)."""
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        old = array[i]
        array[i] = old + H
        plus = f()
        array[i] = old - H
        minus = f()
        array[i] = old
        grad[i] = (plus - minus) / (2 * H)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def gradient_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``rel_error``, or 0 when both gradients are zero up to central differences' noise."""
    if max(np.abs(analytic).max(), np.abs(numeric).max()) < ZERO_GRADIENT:
        return 0.0
    return rel_error(analytic, numeric)


def training_forward(layer, x):
    if hasattr(layer, "rng"):  # a layer that draws random numbers: the same at every evaluation
        layer.rng = np.random.default_rng(0)
    return layer.forward(x, training=True)


def half_squared_error(layer, x, target) -> float:
    return 0.5 * float(np.sum((training_forward(layer, x) - target) ** 2))
