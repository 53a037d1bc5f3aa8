"""Inverted dropout: random zeros while training, the identity at inference and in ONNX."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from .base import DocCase, Layer, LayerKind, LayerSpecBase, Shape


class DropoutSpec(LayerSpecBase):
    """Zeroes each entry with probability ``rate`` while training; any input rank."""

    kind: Literal["dropout"] = Field(
        description="Layer kind: inverted dropout, a regularizer active only in training."
    )
    rate: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="Probability of zeroing each entry while training (0 <= rate < 1); kept "
        "entries are scaled by 1/(1 - rate), so inference needs no rescaling.",
    )

    def output_shape(self, x: Shape) -> Shape:
        return x


class Dropout(Layer):
    """No parameters. ``rng`` (kept as ``self.rng``) draws the masks: the layer's own seeded
    stream, so training is reproducible; tests reset it to repeat a mask."""

    def __init__(self, spec: DropoutSpec, name: str, in_shape: Shape, rng, dtype):
        self.name = name
        self.rate = spec.rate
        self.rng = rng
        self.params = {}
        self.grads = {}
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x -> x * mask / (1 - rate) in training (same shape and dtype); x at inference."""
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape) >= self.rate
        # Scaling the kept entries now keeps the expected activation equal to x, so the
        # inference graph is the identity (and has no Dropout node at all).
        self._mask = keep.astype(x.dtype) / x.dtype.type(1 - self.rate)
        return x * self._mask

    def backward(
        self, dy: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """dy -> dy * mask / (1 - rate): the same linear map as the forward pass."""
        return dy if self._mask is None else dy * self._mask


def lower_dropout(layer: Dropout, g, x: str) -> str:
    """Dropout is the identity at inference: no node, the input name passes through."""
    return x


def examples() -> list[tuple[DropoutSpec, Shape]]:
    """A flat and an image-like input. The gradient test must reset ``layer.rng`` before each
    forward pass so that every evaluation draws the same mask."""
    return [
        (DropoutSpec(kind="dropout"), (None, 6)),
        (DropoutSpec(kind="dropout", rate=0.25), (None, 2, 3, 3)),
    ]


KINDS = (
    LayerKind(
        DropoutSpec,
        Dropout,
        lower_dropout,
        examples,
        docs=(
            DocCase(
                "{kind: dropout, name: x, rate: 0.5}",
                "`dropout`",
                "Inverted dropout scales while training, so inference is the identity: no node.",
            ),
        ),
    ),
)
