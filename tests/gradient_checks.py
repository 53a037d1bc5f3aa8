"""Float64 central differences, the independent reference every analytic gradient is checked
against, and the small helpers the gradient tests share."""

from __future__ import annotations

import numpy as np

# Step of the central differences: with float64, truncation error O(H**2) and rounding error
# O(eps / H) are both near 1e-12 here, far under the 1e-6 relative tolerance.
H = 1e-6


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


def training_forward(layer, x):
    if hasattr(layer, "rng"):  # a layer that draws random numbers: the same at every evaluation
        layer.rng = np.random.default_rng(0)
    return layer.forward(x, training=True)


def half_squared_error(layer, x, target) -> float:
    return 0.5 * float(np.sum((training_forward(layer, x) - target) ** 2))
