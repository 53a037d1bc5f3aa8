"""Optimizers: update parameter arrays in place from their gradients."""

from __future__ import annotations

import math

import numpy as np


class SGD:
    """Plain SGD, classical momentum, or Nesterov momentum (as in PyTorch's formulation)."""

    def __init__(self, spec, params: dict[str, np.ndarray]):
        self.lr = spec.lr
        self.momentum = spec.momentum
        self.nesterov = spec.nesterov
        self.velocity = {k: np.zeros_like(v) for k, v in params.items()} if spec.momentum else {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr = params_dtype_scalar(params, self.lr)
        for k, p in params.items():
            g = grads[k]
            if self.momentum:
                v = self.velocity[k]
                v *= self.momentum
                v += g
                # Nesterov evaluates the step at the look-ahead point: g + momentum * v.
                g = g + self.momentum * v if self.nesterov else v
            p -= lr * g


class Adam:
    """Adam with bias correction folded into the step size (Kingma & Ba, 2015, sec. 2).

    The update runs in place in the parameters' dtype, through one scratch buffer per
    parameter: a NumPy float64 scalar (``np.sqrt(...)`` of a Python float) would silently turn a
    float32 expression into float64, and each temporary is a pass over memory.
    """

    def __init__(self, spec, params: dict[str, np.ndarray]):
        self.lr, self.b1, self.b2, self.eps = spec.lr, spec.beta1, spec.beta2, spec.eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self._scratch = {k: np.empty_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        step = self.lr * math.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        eps_hat = self.eps * math.sqrt(1 - self.b2**self.t)
        scalar = params_dtype_scalar
        step, eps_hat = scalar(params, step), scalar(params, eps_hat)
        b1, b2 = scalar(params, self.b1), scalar(params, self.b2)
        c1, c2 = scalar(params, 1 - self.b1), scalar(params, 1 - self.b2)
        for k, p in params.items():
            g, m, v, buf = grads[k], self.m[k], self.v[k], self._scratch[k]
            m *= b1  # m = b1 m + (1 - b1) g
            np.multiply(g, c1, out=buf)
            m += buf
            v *= b2  # v = b2 v + (1 - b2) g^2
            np.multiply(g, g, out=buf)
            buf *= c2
            v += buf
            np.sqrt(v, out=buf)  # p -= step * m / (sqrt(v) + eps_hat)
            buf += eps_hat
            np.divide(m, buf, out=buf)
            buf *= step
            p -= buf


def params_dtype_scalar(params: dict[str, np.ndarray], value: float):
    """A Python float times a float32 array stays float32 in NumPy 2; be explicit anyway."""
    first = next(iter(params.values()))
    return first.dtype.type(value)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
