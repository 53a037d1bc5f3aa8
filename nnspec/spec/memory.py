"""Memory estimates: a network that cannot fit is refused at validation, before allocating.

``units: 1000000000`` would otherwise surface as a MemoryError (or the kernel's OOM killer)
somewhere inside NumPy, long after the spec was read. The estimate counts what nnspec keeps:
weights and gradients in the training dtype, the optimizer's state, the activations that one
minibatch caches for backprop (and what a kind keeps beside them, such as conv2d's im2col copy
of its input: ``LayerKind.cache_elements``), and the float32 copy and serialized bytes of an
export.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..errors import SpecError
from ..layers import LAYERS
from .models import Spec
from .rules import ModelIO
from .shapes import LayerSummary

# Optimizer arrays per parameter: SGD momentum keeps a velocity, Adam two moments.
_OPTIMIZER_SLOTS = {"sgd": lambda o: 1 if o.momentum else 0, "adam": lambda o: 2}
# Per layer output, a minibatch caches z and a and builds a gradient of the same size.
_ACTIVATION_COPIES = 3


@dataclass(frozen=True)
class Estimate:
    total: int  # bytes
    layer: int  # the index of the layer that needs the most
    parameters: int
    training: bool


def machine_memory() -> int | None:
    """Physical memory in bytes (MemTotal: stable, unlike what happens to be free now)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def estimate(spec: Spec, io: ModelIO, rows: list[LayerSummary]) -> Estimate:
    """Bytes to train the spec (when it has data) or to build and export it (when not)."""
    item = 8 if spec.train.dtype == "float64" else 4
    training = spec.data is not None
    opt = spec.train.optimizer
    copies = 2 + (_OPTIMIZER_SLOTS[opt.kind](opt) if training else 0)  # weights, gradients
    per_layer = []
    shape = (None, *io.shape)
    for layer, row in zip(spec.layers, rows, strict=True):
        need = (row.params or 0) * item * copies
        if training:
            acts = math.prod(row.output_shape[1:]) * _ACTIVATION_COPIES
            acts += LAYERS[layer.kind].cache_elements(layer, shape)
            need += acts * item * spec.train.batch_size
        else:
            need += (row.params or 0) * 8  # a float32 copy for ONNX and its serialized bytes
        per_layer.append(need)
        shape = row.output_shape
    total = sum(per_layer)
    worst = max(range(len(per_layer)), key=per_layer.__getitem__)
    return Estimate(total, worst, sum(r.params or 0 for r in rows), training)


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def check_memory(
    spec: Spec, io: ModelIO, rows: list[LayerSummary], limit: int | None = None
) -> None:
    """Raise a located ``SpecError`` when the estimate exceeds the machine's memory."""
    limit = machine_memory() if limit is None else limit
    if limit is None:
        return
    est = estimate(spec, io, rows)
    if est.total <= limit:
        return
    i = est.layer
    field = "units" if hasattr(spec.layers[i], "units") else "filters"
    path = ("layers", i, field) if hasattr(spec.layers[i], field) else ("layers", i)
    what = "train" if est.training else "build and export"
    detail = (
        "weights, gradients and optimizer state, and the activations of batches of "
        f"{spec.train.batch_size}"
        if est.training
        else "weights, gradients and the exported copy"
    )
    raise SpecError(
        [
            spec.source.issue(
                path,
                f"this network needs about {_size(est.total)} of memory to {what} "
                f"({est.parameters:,} parameters; {detail}), more than this machine's "
                f"{_size(limit)}; layers[{i}] ({spec.layers[i].kind}) needs the most: "
                "expected a smaller layer"
                + (" or a smaller train.batch_size" if est.training else ""),
            )
        ]
    )
