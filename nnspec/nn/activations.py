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
    from ..onnxio.graph import GraphBuilder

LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """``forward(z)`` returns a new array; ``forward_(z)`` overwrites ``z`` with the result
    (no allocation, one less pass over memory) and returns it. ``uses_z``: whether
    ``backward`` reads ``z``; when it does not, a training forward pass may run in place,
    keeping only ``a``."""

    forward: Callable[[np.ndarray], np.ndarray]
    forward_: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray | None, np.ndarray, np.ndarray], np.ndarray]
    lower: Callable[[GraphBuilder, str, str], str]
    uses_z: bool = False
    output_only: bool = False  # softmax normalizes across units: only meaningful as output
    # Zeroes (or nearly) half its inputs: ``initializer: auto`` then picks He rather than Glorot.
    rectifier: bool = False
    gloss: str = ""  # a few words after the name in field descriptions: "(sigmoid)"
    doc_note: str = ""  # the "notes" cell of its row in docs/onnx.md


def _logistic_(z):
    # 1 / (1 + exp(-z)), in place. exp(-z) overflows to inf for z below about -88 (float32),
    # which gives exactly the limit 0; only the warning is silenced.
    with np.errstate(over="ignore"):
        np.negative(z, out=z)
        np.exp(z, out=z)
    z += 1
    return np.reciprocal(z, out=z)


def _logistic_backward(z, a, da):
    # sigma'(z) = sigma(z) (1 - sigma(z)): reuses the forward output, no exp needed.
    d = np.subtract(1, a, dtype=a.dtype)
    d *= a
    d *= da
    return d


def _tanh_backward(z, a, da):
    d = np.multiply(a, a)
    np.subtract(1, d, out=d)
    d *= da
    return d


def _gaussian(z):
    return np.exp(-0.5 * z * z)


def _gaussian_backward(z, a, da):
    # d/dz exp(-z^2/2) = -z exp(-z^2/2) = -z a.
    return -da * z * a


def _relu_(z):
    # z * (z > 0) rather than np.maximum(z, 0): the same values (and -0.0 → 0.0 does not
    # matter), but NumPy's maximum checks for NaN element by element and runs slower.
    return np.multiply(z, z > 0, out=z)


def _relu_backward(z, a, da):
    # relu(z) > 0 exactly where z > 0, so the forward output serves.
    return np.multiply(da, a > 0)


def _leaky(z):
    return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))


def _leaky_backward(z, a, da):
    # The slope is positive, so a > 0 exactly where z > 0.
    return np.where(a > 0, da, da * da.dtype.type(LEAKY_SLOPE))


def _softmax_(z):
    # Shifting by the row maximum leaves softmax unchanged and keeps exp() finite.
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _softmax_backward(z, a, da):
    # Jacobian-vector product of softmax: J = diag(a) - a a^T, so J da = a (da - <da, a>).
    return a * (da - (da * a).sum(axis=1, keepdims=True))


def _copying(inplace):
    """The allocating form of an in-place forward."""
    return lambda z: inplace(z.copy())


def _lower_gaussian(g, x, name):
    sq = g.node("Mul", [x, x], name=f"{name}/square")
    neg_half = g.constant(f"{name}/neg_half", np.array(-0.5))
    return g.node("Exp", [g.node("Mul", [sq, neg_half], name=f"{name}/scale")], name=name)


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(
        forward=lambda z: z,
        forward_=lambda z: z,
        backward=lambda z, a, da: da,
        lower=lambda g, x, name: x,
        doc_note="No node: the Gemm's (or Conv's) output is used as it is.",
    ),
    "logistic": Activation(
        forward=_copying(_logistic_),
        forward_=_logistic_,
        backward=_logistic_backward,
        lower=lambda g, x, name: g.node("Sigmoid", [x], name=name),
        gloss="(sigmoid)",
        doc_note="1 / (1 + exp(-z)).",
    ),
    "tanh": Activation(
        forward=np.tanh,
        forward_=lambda z: np.tanh(z, out=z),
        backward=_tanh_backward,
        lower=lambda g, x, name: g.node("Tanh", [x], name=name),
    ),
    "gaussian": Activation(
        forward=_gaussian,
        forward_=_gaussian,
        backward=_gaussian_backward,
        lower=_lower_gaussian,
        uses_z=True,
        gloss="exp(-z^2/2)",
        doc_note="exp(-z² / 2), written out as Exp(Mul(Mul(z, z), -0.5)).",
    ),
    "relu": Activation(
        forward=_copying(_relu_),
        forward_=_relu_,
        backward=_relu_backward,
        lower=lambda g, x, name: g.node("Relu", [x], name=name),
        rectifier=True,
    ),
    "leaky_relu": Activation(
        forward=_leaky,
        forward_=_leaky,
        backward=_leaky_backward,
        lower=lambda g, x, name: g.node("LeakyRelu", [x], name=name, alpha=LEAKY_SLOPE),
        rectifier=True,
        gloss=f"(slope {LEAKY_SLOPE})",
        doc_note=f"Slope {LEAKY_SLOPE} below zero.",
    ),
    "softmax": Activation(
        forward=_copying(_softmax_),
        forward_=_softmax_,
        backward=_softmax_backward,
        lower=lambda g, x, name: g.node("Softmax", [x], name=name, axis=-1),
        output_only=True,
        gloss="(last layer only)",
        doc_note="Over the units (last axis); the output layer only.",
    ),
}


def in_prose(names, *, glossed: bool = False) -> str:
    """Activation names as a list in a sentence, ``identity, tanh or relu``; ``glossed`` adds
    each one's gloss (``logistic (sigmoid)``). For field descriptions, built from the table so
    that they name every activation there is."""
    words = [f"{n} {ACTIVATIONS[n].gloss}".rstrip() if glossed else n for n in names]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


HIDDEN = tuple(name for name, act in ACTIVATIONS.items() if not act.output_only)
OUTPUT_ONLY = tuple(name for name, act in ACTIVATIONS.items() if act.output_only)
