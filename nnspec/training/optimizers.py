"""Optimizers: update parameter arrays in place from their gradients.

Parameters, gradients and optimizer state may be ``Packed`` tables (views into one flat
buffer each, see ``packing``): the update then runs over the flat buffers instead of once per
array, with the same arithmetic element by element. Large buffers are updated chunk by chunk:
Adam is a dozen passes, and over a chunk that stays in the CPU's cache only the first pass
reads main memory. Each element is computed the same way in any chunk, so results do not
depend on the chunk size.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn.packing import Packed

# Moments of a parameter whose gradient stays zero (a dead ReLU unit) decay geometrically into
# float32 subnormals, which the CPU handles in microcode: a ReLU network trained with Adam at
# batch 64 ran 3x slower after a few epochs. Every this many steps the training loop calls
# ``flush()``, which sets state below the smallest normal number to zero, where it then stays;
# such values are far below anything a step can move. (The loop counts the steps, so a resumed
# run flushes at the same steps as an uninterrupted one.)
FLUSH_EVERY = 16

# Elements per chunk: five float32 arrays of 2^16 (256 KiB each) stay in cache through Adam's
# passes. The 1.7 M-parameter DBN's Adam step, measured inside training on the 2-core machine
# (the matrix products leave the caches cold): 9.7 ms over the whole buffers, 6.2 ms in chunks
# of 2^17, 5.7 ms in chunks of 2^16. Two threads, one per core, were no faster (6.7-8.5 ms): the
# step is bound by memory bandwidth, which the cores share.
CHUNK = 2**16


def _state(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Zeroed arrays shaped like ``params``, packed the same way when ``params`` is packed."""
    if isinstance(params, Packed):
        return params.like()
    return {k: np.zeros_like(v) for k, v in params.items()}


def _chunks(*tables: dict[str, np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    """Same-layout tables (parameters, gradients, state...) as tuples of arrays to update
    together: chunks of the flat buffers when all are packed, else one tuple per key."""
    if all(isinstance(t, Packed) for t in tables):
        n = tables[0].flat.size
        return [tuple(t.flat[i : i + CHUNK] for t in tables) for i in range(0, n, CHUNK)]
    return [tuple(t[k] for t in tables) for k in tables[0]]


def _run(update, groups: list) -> None:
    """``update(group)`` for every group, in order."""
    for group in groups:
        update(group)


class _Groups:
    """``_chunks`` of (params, grads, state...) computed once per (params, grads) pair: a
    step on a small network is a few microseconds of arithmetic, and rebuilding the list
    each time would double it. The tables themselves are kept (not their ids, which a new
    dict may reuse) and compared."""

    def __init__(self):
        self._params = self._grads = self._groups = None

    def __call__(self, params, grads, *tables):
        if params is not self._params or grads is not self._grads:
            self._params, self._grads = params, grads
            self._groups = _chunks(params, grads, *tables)
        return self._groups


def flush_subnormals(*arrays: np.ndarray) -> None:
    """Set entries smaller in magnitude than the dtype's smallest normal number to zero."""
    for a in arrays:
        if a.dtype.kind == "f" and a.size:
            tiny = np.finfo(a.dtype).smallest_normal
            np.copyto(a, 0, where=np.abs(a) < tiny)


def _flush(*tables: dict[str, np.ndarray]) -> None:
    if tables and tables[0]:
        _run(lambda arrays: flush_subnormals(*arrays), _chunks(*tables))


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

            def plain(group):
                p, g, buf = group
                np.multiply(g, lr, out=buf)
                p -= buf

            _run(plain, self._groups(params, grads, self._scratch))
            return

        def momentum(group):
            p, g, v, buf = group
            v *= mu  # v = momentum v + g
            v += g
            if self.nesterov:  # the step at the look-ahead point: g + momentum v
                np.multiply(v, mu, out=buf)
                buf += g
                buf *= lr
            else:
                np.multiply(v, lr, out=buf)
            p -= buf

        _run(momentum, self._groups(params, grads, self.velocity, self._scratch))

    def flush(self) -> None:
        _flush(self.velocity)


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

        def update(group):
            p, g, m, v, buf = group
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

        _run(update, self._groups(params, grads, self.m, self.v, self._scratch))

    def flush(self) -> None:
        _flush(self.m, self.v)


def _dtype(params: dict[str, np.ndarray]) -> np.dtype:
    return next(iter(params.values())).dtype if params else np.dtype(np.float64)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
