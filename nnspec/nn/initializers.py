"""Weight initializers, seeded through the ``numpy.random.Generator`` they are given."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .activations import ACTIVATIONS

Initializer = Callable[[np.random.Generator, int, int, tuple[int, ...]], np.ndarray]


def _glorot_uniform(rng, fan_in, fan_out, shape):
    # Glorot & Bengio (2010): keeps the variance of activations and gradients about equal
    # across layers for symmetric activations (tanh, logistic).
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def _glorot_normal(rng, fan_in, fan_out, shape):
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def _he_uniform(rng, fan_in, fan_out, shape):
    # He et al. (2015): ReLU zeroes half its inputs, so the variance needs a factor 2.
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


def _he_normal(rng, fan_in, fan_out, shape):
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": _glorot_uniform,
    "glorot_normal": _glorot_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
}

RECTIFIERS = tuple(name for name, act in ACTIVATIONS.items() if act.rectifier)

# How a layer's `initializer` field reads in the schema and docs, from the tables above.
HELP = (
    f"Weight initializer: {', '.join(INITIALIZERS)}, or auto (He for {'/'.join(RECTIFIERS)}, "
    "Glorot otherwise)"
)


def initializer_for(name: str, activation: str) -> Initializer:
    """``auto`` picks He for rectifiers and Glorot otherwise."""
    if name == "auto":
        name = "he_uniform" if activation in RECTIFIERS else "glorot_uniform"
    return INITIALIZERS[name]
