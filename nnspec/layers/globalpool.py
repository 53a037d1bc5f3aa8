"""Global average pooling: ``(batch, C, H, W) -> (batch, C, 1, 1)``, the mean of each channel.

Kept 4-D, as ONNX GlobalAveragePool keeps it, so that a flatten after it gives
``(batch, C)`` exactly as in the graphs it is imported from (torch's ``AdaptiveAvgPool2d(1)``
and ``x.mean((2, 3), keepdim=True)``, ResNet-style heads). No parameters.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from .base import DocCase, Layer, LayerKind, LayerSpecBase, Shape, ShapeError, dims


class GlobalAvgPool2dSpec(LayerSpecBase):
    """Mean over each channel's whole image: ``(batch, C, H, W) -> (batch, C, 1, 1)``."""

    kind: Literal["globalavgpool2d"] = Field(
        description="Layer kind: global average pooling, the mean of each channel over its "
        "height and width (ONNX GlobalAveragePool); the output is (batch, channels, 1, 1)."
    )

    def output_shape(self, x: Shape) -> Shape:
        if len(x) != 4:
            raise ShapeError(
                f"expected images (batch, channels, height, width), got a {len(x) - 1}-D "
                f"sample shape {dims(x[1:])}"
            )
        return (x[0], x[1], 1, 1)


class GlobalAvgPool2d(Layer):
    def __init__(self, spec: GlobalAvgPool2dSpec, name: str, in_shape: Shape, rng, dtype):
        self.name = name
        self.params, self.grads = {}, {}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (batch, C, H, W) -> (batch, C, 1, 1), the mean of each channel."""
        if training:
            self._x_shape = x.shape
        return x.mean(axis=(2, 3), keepdims=True, dtype=x.dtype)

    def backward(
        self, da: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """da: (batch, C, 1, 1) -> dL/dx (batch, C, H, W): y = sum(x) / (H W), so every
        pixel of a channel gets 1 / (H W) of that channel's gradient."""
        n, c, h, w = self._x_shape
        share = da / da.dtype.type(h * w)
        return np.broadcast_to(share, (n, c, h, w)).copy()


def lower_globalavgpool2d(layer: GlobalAvgPool2d, g, x: str) -> str:
    """One GlobalAveragePool node."""
    return g.node("GlobalAveragePool", [x], name=f"{layer.name}/GlobalAveragePool")


def examples() -> list[tuple[GlobalAvgPool2dSpec, Shape]]:
    """A square and a non-square image, and a 1×1 one (the identity)."""
    spec = GlobalAvgPool2dSpec(kind="globalavgpool2d")
    return [(spec, (None, 3, 4, 4)), (spec, (None, 2, 3, 5)), (spec, (None, 2, 1, 1))]


KINDS = (
    LayerKind(
        GlobalAvgPool2dSpec,
        GlobalAvgPool2d,
        lower_globalavgpool2d,
        examples,
        docs=(
            DocCase(
                "{kind: globalavgpool2d, name: x}",
                "`globalavgpool2d`",
                "The output keeps its 1×1 spatial axes, as in ONNX; flatten it for a dense layer.",
                image=True,
            ),
        ),
        takes_images=True,
    ),
)
