"""Local response normalization across channels, exactly as ONNX ``LRN`` defines it."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt

from .base import DocCase, Layer, LayerKind, LayerSpecBase, Shape, ShapeError, dims


class LRNSpec(LayerSpecBase):
    """``y = x / (bias + alpha / size * square_sum) ** beta``, where ``square_sum`` sums x^2
    over a window of ``size`` neighbouring channels at the same pixel (AlexNet, section 3.3).
    """

    kind: Literal["lrn"] = Field(
        description="Layer kind: local response normalization across channels of "
        "(batch, channels, height, width) input."
    )
    size: PositiveInt = Field(
        description="Number of channels in the window: channel c sums channels "
        "c - floor((size-1)/2) to c + ceil((size-1)/2), clipped to the existing ones."
    )
    alpha: float = Field(
        default=1e-4, ge=0, description="Scale of the windowed sum of squares (divided by size)."
    )
    beta: float = Field(default=0.75, description="Exponent of the normalizing denominator.")
    bias: float = Field(
        default=1.0,
        gt=0,
        description="Additive constant k of the denominator, which keeps it positive "
        "(AlexNet used 2).",
    )

    def output_shape(self, x: Shape) -> Shape:
        if len(x) != 4:
            raise ShapeError(
                "expected (batch, channels, height, width) input, got a "
                f"{len(x) - 1}-D sample shape {dims(x[1:])}"
            )
        return x


def window_sum(v: np.ndarray, before: int, after: int) -> np.ndarray:
    """out[:, c] = sum of v[:, i] for i in [c - before, c + after] clipped to [0, C-1].

    One cumulative sum over channels (with a leading zero) makes every window a difference of
    two of its entries, so the cost does not grow with the window size.
    """
    channels = v.shape[1]
    cs = np.zeros((v.shape[0], channels + 1, *v.shape[2:]), dtype=v.dtype)
    np.cumsum(v, axis=1, out=cs[:, 1:])
    c = np.arange(channels)
    lo = np.maximum(c - before, 0)
    hi = np.minimum(c + after, channels - 1)
    return cs[:, hi + 1] - cs[:, lo]


class LRN(Layer):
    """No parameters. Input (batch, channels, height, width)."""

    def __init__(self, spec: LRNSpec, name: str, in_shape: Shape, rng, dtype):
        self.name = name
        self.channels = int(in_shape[1])
        self.size, self.alpha, self.beta, self.bias = spec.size, spec.alpha, spec.beta, spec.bias
        # ONNX's window: floor((size-1)/2) channels before c, ceil((size-1)/2) after.
        self.before, self.after = (spec.size - 1) // 2, spec.size // 2
        self.params = {}
        self.grads = {}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (batch, C, h, w) -> y of the same shape and dtype."""
        square_sum = window_sum(x * x, self.before, self.after)
        d = self.bias + (self.alpha / self.size) * square_sum
        y = x * d**-self.beta
        if training:
            self._x, self._d = x, d
        return y

    def backward(
        self, dy: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """dy -> dL/dx, both (batch, C, h, w).

        With d_c = bias + alpha/size * S_c and y_c = x_c * d_c^-beta (per pixel):
          dL/dx_j = dy_j * d_j^-beta
                    - 2 beta alpha/size * x_j * sum over {c : j in window(c)} of g_c,
          where g_c = dy_c * x_c * d_c^(-beta-1),
        because S_c contains x_j^2 exactly when j is in window(c). window(c) is
        [c - before, c + after], so j is in it when c - before <= j <= c + after, that is
        c in [j - after, j + before]: the transposed window, with before and after swapped
        (the same window when size is odd). The clipping of window(c) to real channels never
        excludes a real j, so clipping c to [0, C-1] is all the edges need.
        """
        x, d = self._x, self._d
        g = dy * x * d ** (-self.beta - 1)
        spread = window_sum(g, self.after, self.before)
        return dy * d**-self.beta - (2 * self.beta * self.alpha / self.size) * x * spread


def lower_lrn(layer: LRN, g, x: str) -> str:
    """ONNX LRN for odd sizes. onnxruntime's CPU LRN refuses even sizes (it checks
    ``size % 2 == 1``) although ONNX defines them, so an even size is lowered to the definition
    itself: the windowed sum of squares as a 1x1 Conv whose (C, C) weight is the 0/1 band of
    each channel's window, then ``x / (bias + alpha/size * sum) ** beta``."""
    if layer.size % 2 == 1:
        return g.node(
            "LRN",
            [x],
            name=f"{layer.name}/LRN",
            size=layer.size,
            alpha=layer.alpha,
            beta=layer.beta,
            bias=layer.bias,
        )
    n, c = layer.name, np.arange(layer.channels)
    # band[c, i] = 1 where channel i is in channel c's window [c - before, c + after].
    band = (c[None, :] >= c[:, None] - layer.before) & (c[None, :] <= c[:, None] + layer.after)
    square = g.node("Mul", [x, x], name=f"{n}/Mul")
    window = g.initializer(f"{n}.window", band[:, :, None, None])
    square_sum = g.node("Conv", [square, window], name=f"{n}/Conv")
    scale = g.initializer(f"{n}.alpha_over_size", np.array(layer.alpha / layer.size))
    d = g.node("Mul", [square_sum, scale], name=f"{n}/Mul")
    d = g.node("Add", [d, g.initializer(f"{n}.bias", np.array(layer.bias))], name=f"{n}/Add")
    d = g.node("Pow", [d, g.initializer(f"{n}.beta", np.array(layer.beta))], name=f"{n}/Pow")
    return g.node("Div", [x, d], name=f"{n}/Div")


def examples() -> list[tuple[LRNSpec, Shape]]:
    """An odd (symmetric) window and an even (asymmetric) one wider than needed at the edges;
    a large alpha so the normalization matters on unit-scale inputs."""
    return [
        (LRNSpec(kind="lrn", size=3, alpha=0.5), (None, 5, 2, 2)),
        (LRNSpec(kind="lrn", size=4, alpha=1.0, beta=0.6, bias=2.0), (None, 3, 2, 3)),
    ]


KINDS = (
    LayerKind(
        LRNSpec,
        LRN,
        lower_lrn,
        examples,
        docs=(
            DocCase(
                "{kind: lrn, name: x, size: 3}",
                "`lrn`, odd `size`",
                "ONNX LRN, as AlexNet uses it.",
                image=True,
            ),
            DocCase(
                "{kind: lrn, name: x, size: 2}",
                "`lrn`, even `size`",
                "onnxruntime's CPU LRN refuses even sizes although ONNX defines them, so the "
                "definition is written out: the window's sum of squares as a 1×1 Conv whose "
                "weight is the 0/1 band of each channel's window, then "
                "x / (bias + alpha / size · sum) ^ beta.",
                image=True,
            ),
        ),
        takes_images=True,
    ),
)
