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

from .numeric import row_max, row_sum


@dataclass(frozen=True)
class Loss:
    """``value_and_grad(out, t) -> (loss, gradient, output)``.

    With ``wrt_preactivation`` the loss is fused with the output activation: ``out`` is the
    output layer's pre-activation z (the layer defers its activation while training), the
    loss applies the activation itself and returns its output a, and the gradient is dL/dz.
    Otherwise ``out`` is the output a, returned as it is, and the gradient is dL/da.
    """

    value_and_grad: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray, np.ndarray]]
    wrt_preactivation: bool
    output_activation: str | None  # the activation the loss requires on the last layer
    one_hot_targets: bool  # classification targets as one-hot rows rather than indices


def _mse(a, t):
    """Mean over samples and outputs of (a - t)^2; t: (batch, outputs)."""
    diff = a - t
    loss = float(np.vdot(diff, diff)) / diff.size
    diff *= diff.dtype.type(2.0 / diff.size)
    return loss, diff, a


def _cross_entropy(z, t):
    """Mean over samples of -log softmax(z)[t]; t: (batch,) class indices."""
    n, k = z.shape
    # Entries (i, t_i) as positions in the flat array: 1-D indexing is much cheaper than
    # z[np.arange(n), t] on small batches.
    at = np.arange(0, n * k, k)
    at += t
    # Shifting by the row maximum leaves softmax unchanged and keeps exp() finite;
    # -log softmax(z)_t = log(sum exp(z - max)) + max - z_t needs no log of a probability
    # that may have underflowed to 0.
    zmax = row_max(z)
    e = z - zmax[:, None]
    per = -e.ravel()[at]  # max - z_t
    np.exp(e, out=e)
    total = row_sum(e)
    per += np.log(total)
    loss = float(per.sum()) / n
    a = e
    a /= total[:, None]
    # d/dz_j of (logsumexp(z) - z_t) = softmax(z)_j - [j == t]; the 1/n is the batch mean.
    dz = a.copy()
    dz.ravel()[at] -= 1
    dz *= dz.dtype.type(1 / n)
    return loss, dz, a


def _binary_cross_entropy(z, t):
    """Mean over samples of the summed per-output BCE; t: (batch, outputs) in {0, 1}."""
    # -t log s(z) - (1-t) log(1-s(z)) = max(z, 0) - z t + log(1 + exp(-|z|)), exact and stable.
    per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    with np.errstate(over="ignore"):  # exp(-z) = inf gives the limit a = 0
        a = 1 / (1 + np.exp(-z))
    return float(per.sum() / len(z)), (a - t) / len(z), a


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
