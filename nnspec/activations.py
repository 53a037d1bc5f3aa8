"""Activation functions: forward, derivative and ONNX lowering, side by side in one table.

Keeping the three together means the exported graph cannot drift from the trained network
(skl2onnx keeps its own copy of scikit-learn's activation table and the two can disagree).

Every ``backward(z, a, da)`` returns dL/dz given dL/da; it reuses ``a`` (the forward output)
where the derivative is cheaper written in terms of it, as backprop's dynamic programming
intends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .exporter.graph import GraphBuilder

LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    lower: Callable[[GraphBuilder, str, str], str]
    output_only: bool = False  # softmax normalizes across units: only meaningful as output


def _logistic(z):
    # 0.5 * (1 + tanh(z / 2)) equals 1 / (1 + exp(-z)) but never overflows for large |z|.
    a = np.multiply(z, 0.5, dtype=z.dtype)
    np.tanh(a, out=a)
    a += 1
    a *= 0.5
    return a


def _logistic_backward(z, a, da):
    # sigma'(z) = sigma(z) (1 - sigma(z)): reuses the forward output, no exp needed.
    return da * a * (1 - a)


def _tanh_backward(z, a, da):
    return da * (1 - a * a)


def _gaussian(z):
    return np.exp(-0.5 * z * z)


def _gaussian_backward(z, a, da):
    # d/dz exp(-z^2/2) = -z exp(-z^2/2) = -z a.
    return -da * z * a


def _relu_backward(z, a, da):
    return da * (z > 0)


def _leaky(z):
    return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))


def _leaky_backward(z, a, da):
    return np.where(z > 0, da, da * z.dtype.type(LEAKY_SLOPE))


def _softmax(z):
    # Shifting by the row maximum leaves softmax unchanged and keeps exp() finite.
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def _softmax_backward(z, a, da):
    # Jacobian-vector product of softmax: J = diag(a) - a a^T, so J da = a (da - <da, a>).
    return a * (da - (da * a).sum(axis=1, keepdims=True))


def _lower_gaussian(g, x, name):
    sq = g.node("Mul", [x, x], name=f"{name}/square")
    neg_half = g.constant(f"{name}/neg_half", np.array(-0.5))
    return g.node("Exp", [g.node("Mul", [sq, neg_half], name=f"{name}/scale")], name=name)


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(
        forward=lambda z: z,
        backward=lambda z, a, da: da,
        lower=lambda g, x, name: x,
    ),
    "logistic": Activation(
        forward=_logistic,
        backward=_logistic_backward,
        lower=lambda g, x, name: g.node("Sigmoid", [x], name=name),
    ),
    "tanh": Activation(
        forward=np.tanh,
        backward=_tanh_backward,
        lower=lambda g, x, name: g.node("Tanh", [x], name=name),
    ),
    "gaussian": Activation(
        forward=_gaussian,
        backward=_gaussian_backward,
        lower=_lower_gaussian,
    ),
    "relu": Activation(
        forward=lambda z: np.maximum(z, 0),
        backward=_relu_backward,
        lower=lambda g, x, name: g.node("Relu", [x], name=name),
    ),
    "leaky_relu": Activation(
        forward=_leaky,
        backward=_leaky_backward,
        lower=lambda g, x, name: g.node("LeakyRelu", [x], name=name, alpha=LEAKY_SLOPE),
    ),
    "softmax": Activation(
        forward=_softmax,
        backward=_softmax_backward,
        lower=lambda g, x, name: g.node("Softmax", [x], name=name, axis=-1),
        output_only=True,
    ),
}
