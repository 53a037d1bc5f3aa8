"""Losses: value and gradient, with the output activation they are fused with.

``cross_entropy`` and ``binary_cross_entropy`` take the output layer's pre-activation ``z`` and
return dL/dz directly: for softmax + cross-entropy (and logistic + binary cross-entropy) the
chain rule through the activation collapses to ``(a - t) / n``, which is both cheaper and more
accurate than differentiating log(softmax) in two steps, and ``z`` lets the loss use
log-sum-exp instead of log(a), which would overflow when a probability underflows to 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Loss:
    # (z, a, t) -> (loss, gradient). The gradient is dL/dz when ``wrt_preactivation``, else dL/da.
    value_and_grad: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, np.ndarray]]
    wrt_preactivation: bool
    output_activation: str | None  # the activation the loss requires on the last layer
    one_hot_targets: bool  # classification targets as one-hot rows rather than indices


def _mse(z, a, t):
    """Mean over samples and outputs of (a - t)^2; t: (batch, outputs)."""
    diff = a - t
    return float(np.mean(diff * diff)), diff * (2.0 / diff.size)


def _cross_entropy(z, a, t):
    """Mean over samples of -log softmax(z)[t]; t: (batch,) class indices, a = softmax(z)."""
    n = len(z)
    rows = np.arange(n)
    zmax = z.max(axis=1)
    logsumexp = np.log(np.exp(z - zmax[:, None]).sum(axis=1)) + zmax
    loss = float(np.mean(logsumexp - z[rows, t]))
    # d/dz_j of (logsumexp(z) - z_t) = softmax(z)_j - [j == t]; the 1/n is the batch mean.
    dz = a.copy()
    dz[rows, t] -= 1
    dz /= n
    return loss, dz


def _binary_cross_entropy(z, a, t):
    """Mean over samples of the summed per-output BCE; t: (batch, outputs) in {0, 1}."""
    # -t log s(z) - (1-t) log(1-s(z)) = max(z, 0) - z t + log(1 + exp(-|z|)), exact and stable.
    per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return float(per.sum() / len(z)), (a - t) / len(z)


LOSSES: dict[str, Loss] = {
    "mse": Loss(_mse, wrt_preactivation=False, output_activation=None, one_hot_targets=True),
    "cross_entropy": Loss(
        _cross_entropy, wrt_preactivation=True, output_activation="softmax", one_hot_targets=False
    ),
    "binary_cross_entropy": Loss(
        _binary_cross_entropy,
        wrt_preactivation=True,
        output_activation="logistic",
        one_hot_targets=True,
    ),
}
