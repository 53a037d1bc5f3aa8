"""Optimizers: update parameter arrays in place from their gradients."""

from __future__ import annotations

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
    """Adam with bias correction folded into the step size (Kingma & Ba, 2015, sec. 2)."""

    def __init__(self, spec, params: dict[str, np.ndarray]):
        self.lr, self.b1, self.b2, self.eps = spec.lr, spec.beta1, spec.beta2, spec.eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        step = self.lr * np.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        eps_hat = self.eps * np.sqrt(1 - self.b2**self.t)
        for k, p in params.items():
            g, m, v = grads[k], self.m[k], self.v[k]
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * (g * g)
            p -= params_dtype_scalar(params, step) * m / (np.sqrt(v) + eps_hat)


def params_dtype_scalar(params: dict[str, np.ndarray], value: float):
    """A Python float times a float32 array stays float32 in NumPy 2; be explicit anyway."""
    first = next(iter(params.values()))
    return first.dtype.type(value)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
