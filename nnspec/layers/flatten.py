"""Flatten: ``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``, no parameters."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from .base import DocCase, Layer, LayerKind, LayerSpecBase, Shape, ShapeError


class FlattenSpec(LayerSpecBase):
    """Collapses every axis after the batch into one; a flat input passes unchanged."""

    kind: Literal["flatten"] = Field(
        description="Layer kind: flattens (batch, d1, d2, ...) to (batch, d1*d2*...), as "
        "needed between convolutional or normalization layers and a dense layer."
    )

    def output_shape(self, x: Shape) -> Shape:
        if len(x) < 2:
            raise ShapeError(f"expected an input with a batch and sample axes, got shape {x}")
        return (x[0], math.prod(int(d) for d in x[1:]))


class Flatten(Layer):
    """No parameters; remembers the input shape so ``backward`` can restore it."""

    def __init__(self, spec: FlattenSpec, name: str, in_shape: Shape, rng, dtype):
        self.name = name
        self.params = {}
        self.grads = {}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (batch, d1, d2, ...) -> (batch, d1*d2*...), a view in C order (as ONNX)."""
        self._in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(
        self, dy: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """dy: (batch, d1*d2*...) -> dL/dx: (batch, d1, d2, ...); a reshape moves no values."""
        return dy.reshape(self._in_shape)


def lower_flatten(layer: Flatten, g, x: str) -> str:
    """ONNX Flatten with axis=1 rather than a Reshape to fixed dims: the batch stays symbolic."""
    return g.node("Flatten", [x], name=f"{layer.name}/Flatten", axis=1)


def examples() -> list[tuple[FlattenSpec, Shape]]:
    """An image-like input, a 3-D input and an already-flat one."""
    spec = FlattenSpec(kind="flatten")
    return [(spec, (None, 2, 3, 4)), (spec, (None, 3, 2)), (spec, (None, 5))]


KINDS = (
    LayerKind(
        FlattenSpec,
        Flatten,
        lower_flatten,
        examples,
        docs=(
            DocCase(
                "{kind: flatten, name: x}",
                "`flatten`",
                "Flatten with axis 1 rather than a Reshape to fixed sizes: the batch stays "
                "symbolic.",
                image=True,
            ),
        ),
    ),
)
