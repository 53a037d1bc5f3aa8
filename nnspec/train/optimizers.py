"""Optimizers: update parameter arrays in place from their gradients.

Parameters, gradients and optimizer state may be ``Packed`` tables (views into one flat
buffer each, see ``packing``): the update then runs once over each flat buffer instead of once
per array, with the same arithmetic element by element.
"""

from __future__ import annotations

import math

import numpy as np

from .packing import Packed

# Moments of a parameter whose gradient stays zero (a dead ReLU unit) decay geometrically into
# float32 subnormals, which the CPU handles in microcode: a ReLU network trained with Adam at
# batch 64 ran 3x slower after a few epochs. Every this many steps the training loop calls
# ``flush()``, which sets state below the smallest normal number to zero, where it then stays;
# such values are far below anything a step can move. (The loop counts the steps, so a resumed
# run flushes at the same steps as an uninterrupted one.)
FLUSH_EVERY = 16


def _state(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Zeroed arrays shaped like ``params``, packed the same way when ``params`` is packed."""
    if isinstance(params, Packed):
        return params.like()
    return {k: np.zeros_like(v) for k, v in params.items()}


def _groups(params, grads, *tables):
    """``(param, grad, state...)`` tuples to update: one for packed tables, else one per key."""
    if (
        isinstance(params, Packed)
        and isinstance(grads, Packed)
        and all(isinstance(t, Packed) for t in tables)
    ):
        return [(params.flat, grads.flat, *(t.flat for t in tables))]
    return [(p, grads[k], *(t[k] for t in tables)) for k, p in params.items()]


class _Groups:
    """``_groups`` computed once per (params, grads) pair: a step on a small network is a few
    microseconds of arithmetic, and rebuilding the list each time would double it. The
    tables themselves are kept (not their ids, which a new dict may reuse) and compared."""

    def __init__(self):
        self._params = self._grads = self._groups = None

    def __call__(self, params, grads, *tables):
        if params is not self._params or grads is not self._grads:
            self._params, self._grads = params, grads
            self._groups = _groups(params, grads, *tables)
        return self._groups


def _flats(table: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [table.flat] if isinstance(table, Packed) else list(table.values())


def flush_subnormals(*arrays: np.ndarray) -> None:
    """Set entries smaller in magnitude than the dtype's smallest normal number to zero."""
    for a in arrays:
        if a.dtype.kind == "f" and a.size:
            tiny = np.finfo(a.dtype).smallest_normal
            np.copyto(a, 0, where=np.abs(a) < tiny)


class SGD:
    """Plain SGD, classical momentum, or Nesterov momentum (as in PyTorch's formulation)."""

    def __init__(self, spec, params: dict[str, np.ndarray]):
        self.lr = spec.lr
        self.momentum = spec.momentum
        self.nesterov = spec.nesterov
        self.velocity = _state(params) if spec.momentum else {}
        self._scratch = _state(params)
        self._dtype = _dtype(params)
        self._groups = _Groups()

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr, mu = self._dtype.type(self.lr), self._dtype.type(self.momentum)
        if not self.momentum:
            for p, g, buf in self._groups(params, grads, self._scratch):
                np.multiply(g, lr, out=buf)
                p -= buf
            return
        for p, g, v, buf in self._groups(params, grads, self.velocity, self._scratch):
            v *= mu  # v = momentum v + g
            v += g
            if self.nesterov:  # the step at the look-ahead point: g + momentum v
                np.multiply(v, mu, out=buf)
                buf += g
            else:
                buf[...] = v
            buf *= lr
            p -= buf

    def flush(self) -> None:
        flush_subnormals(*_flats(self.velocity))


class Adam:
    """Adam with bias correction folded into the step size (Kingma & Ba, 2015, sec. 2).

    The update runs in place in the parameters' dtype, through one scratch buffer: a NumPy
    float64 scalar (``np.sqrt(...)`` of a Python float) would silently turn a float32
    expression into float64, and each temporary is a pass over memory.
    """

    def __init__(self, spec, params: dict[str, np.ndarray]):
        self.lr, self.b1, self.b2, self.eps = spec.lr, spec.beta1, spec.beta2, spec.eps
        self.m = _state(params)
        self.v = _state(params)
        self._scratch = _state(params)
        self._dtype = _dtype(params)
        self._groups = _Groups()
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        step = self.lr * math.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        eps_hat = self.eps * math.sqrt(1 - self.b2**self.t)
        # Scalars in the parameters' dtype: a Python float times a float32 array stays float32
        # in NumPy 2, but a NumPy float64 scalar would not.
        f = self._dtype.type
        step, eps_hat, b1, b2 = f(step), f(eps_hat), f(self.b1), f(self.b2)
        c1, c2 = f(1 - self.b1), f(1 - self.b2)
        for p, g, m, v, buf in self._groups(params, grads, self.m, self.v, self._scratch):
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

    def flush(self) -> None:
        flush_subnormals(*_flats(self.m), *_flats(self.v))


def _dtype(params: dict[str, np.ndarray]) -> np.dtype:
    return next(iter(params.values())).dtype if params else np.dtype(np.float64)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
