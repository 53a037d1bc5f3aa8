"""Max and average pooling over NCHW images: ``(batch, C, H, W) -> (batch, C, H', W')``.

No parameters. Both read the windows through the strided view of ``window``; backward adds
each kernel tap's share back onto the padded input, one strided slice per tap.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from . import window
from .base import DocCase, Layer, LayerKind, LayerSpecBase, Shape, ShapeError, dims
from .window import IntOrPair, Padding

KERNEL_HELP = "Window height and width: n for n×n, or [kh, kw]."
STRIDE_HELP = (
    "Step between windows: n, or [stride_h, stride_w] (default: the kernel_size, so the "
    "windows tile the input without overlapping)."
)


class _Pool2dSpec(LayerSpecBase):
    """Geometry and shapes shared by the pooling specs. Subclasses declare the fields
    ``kind``, ``kernel_size``, ``stride`` and ``padding`` themselves: fields declared here
    would come before ``kind`` in the schema and the generated documentation."""

    def geometry(self, x: Shape) -> window.Window:
        """The resolved window over input ``x``; ShapeError when it does not fit."""
        stride = self.kernel_size if self.stride is None else self.stride
        win = window.fit_window(x, self.kernel_size, stride, self.padding, what="window")
        top, left = win.pads[:2]
        if top >= win.kernel[0] or left >= win.kernel[1]:
            # A window entirely in the padding has nothing to pool; ONNX refuses such pads.
            raise ShapeError(
                f"padding {top}×{left} must be smaller than the {dims(win.kernel)} pooling window"
            )
        return win

    def output_shape(self, x: Shape) -> Shape:
        return (x[0], x[1], *self.geometry(x).out)


class MaxPool2dSpec(_Pool2dSpec):
    """Maximum over each window, per channel: ``(batch, C, H, W) -> (batch, C, H', W')``."""

    kind: Literal["maxpool2d"] = Field(description="Layer kind: 2-D max pooling (ONNX MaxPool).")
    kernel_size: IntOrPair = Field(description=KERNEL_HELP)
    stride: IntOrPair | None = Field(default=None, description=STRIDE_HELP)
    padding: Padding = Field(
        default="valid",
        description="Padding of the input, which never wins the maximum: " + window.PADDING_HELP,
    )


class AvgPool2dSpec(_Pool2dSpec):
    """Mean over each window, per channel: ``(batch, C, H, W) -> (batch, C, H', W')``."""

    kind: Literal["avgpool2d"] = Field(
        description="Layer kind: 2-D average pooling (ONNX AveragePool)."
    )
    kernel_size: IntOrPair = Field(description=KERNEL_HELP)
    stride: IntOrPair | None = Field(default=None, description=STRIDE_HELP)
    padding: Padding = Field(
        default="valid",
        description="Padding of the input, left out of each mean's count: " + window.PADDING_HELP,
    )


class _Pool2d(Layer):
    """Shared constructor: the resolved ``window`` (read by the ONNX lowering), no params."""

    def __init__(self, spec: _Pool2dSpec, name: str, in_shape: Shape, rng, dtype):
        self.name = name
        self.window = spec.geometry(in_shape)
        self.in_hw = (int(in_shape[2]), int(in_shape[3]))
        self.params, self.grads = {}, {}

    def _scatter(self, per_tap, shape, dtype) -> np.ndarray:
        """dL/dx (batch, C, H, W) from ``per_tap(k, out)``, which writes the gradient reaching
        kernel tap k of every window into ``out`` (C, H', W', batch). Batch-last (window.py)."""
        n, c, h, w = shape
        top, left, bottom, right = self.window.pads
        dxp = np.zeros((c, h + top + bottom, w + left + right, n), dtype=dtype)
        # Windows that do not overlap (stride >= kernel) give each pixel to at most one tap:
        # the gradient is written straight into place. Overlapping windows (stride < kernel)
        # share pixels, and += accumulates their shares.
        disjoint = all(s >= k for s, k in zip(self.window.stride, self.window.kernel, strict=True))
        tmp = None if disjoint else np.empty((c, *self.window.out, n), dtype=dtype)
        for k, target in window.taps(dxp, self.window):
            if disjoint:
                per_tap(k, target)
            else:
                per_tap(k, tmp)
                target += tmp
        return window.from_chwn(window.unpad(dxp, self.window, (h, w)))


class MaxPool2d(_Pool2d):
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (batch, C, H, W) -> (batch, C, H', W'), the maximum of each window (a view of
        batch-last memory, window.py)."""
        # -inf padding can never be a window's maximum (every window holds an input pixel).
        xp = window.pad(window.to_chwn(x), self.window, -np.inf)
        kh, kw = self.window.kernel
        # A running maximum over the kernel taps, each tap one strided slice of the input: a
        # few passes over the output instead of an argmax over a copied window view. Only a
        # strictly greater value moves the maximum, so ties keep the first tap, and backward
        # routes the gradient there (as PyTorch does).
        taps = window.taps(xp, self.window)
        y = next(taps)[1].copy()
        arg = np.zeros(y.shape, dtype=np.uint8 if kh * kw < 256 else np.int32) if training else None
        for k, tap in taps:
            if training:
                greater = tap > y
                # arg = k where greater, else arg: in integer arithmetic, which is much faster
                # than a masked copy (k - arg >= 0 since arg < k).
                step = np.subtract(k, arg, dtype=arg.dtype)
                step *= greater
                arg += step
            np.maximum(y, tap, out=y)
        if training:
            self._arg, self._x_shape = arg, x.shape
        return window.from_chwn(y)

    def backward(
        self, da: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """da: (batch, C, H', W') -> dL/dx (batch, C, H, W): all of each window's gradient
        goes to the pixel that was its maximum."""
        da = window.to_chwn(da)
        return self._scatter(
            lambda k, out: np.multiply(da, self._arg == k, out=out), self._x_shape, da.dtype
        )


class AvgPool2d(_Pool2d):
    def __init__(self, spec: AvgPool2dSpec, name: str, in_shape: Shape, rng, dtype):
        super().__init__(spec, name, in_shape, rng, dtype)
        # 1 / (input pixels in each window): padding is not counted (count_include_pad=0).
        count = np.zeros(self.window.out)
        ones = window.pad(np.ones((1, *self.in_hw, 1)), self.window)
        for _, tap in window.taps(ones, self.window):
            count += tap[0, :, :, 0]
        self.inv_count = (1.0 / count)[:, :, None].astype(dtype)  # (H', W', 1): batch-last

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (batch, C, H, W) -> (batch, C, H', W'), the mean of each window."""
        taps = window.taps(window.pad(window.to_chwn(x), self.window), self.window)
        y = next(taps)[1].copy()
        for _, tap in taps:
            y += tap
        y *= self.inv_count.astype(x.dtype, copy=False)
        if training:
            self._x_shape = x.shape
        return window.from_chwn(y)

    def backward(
        self, da: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """da: (batch, C, H', W') -> dL/dx (batch, C, H, W): each window's gradient is shared
        equally by the input pixels it averaged."""
        share = window.to_chwn(da) * self.inv_count.astype(da.dtype, copy=False)
        return self._scatter(lambda k, out: np.copyto(out, share), self._x_shape, share.dtype)


def _lower(op_type: str, layer: _Pool2d, g, x: str, **attrs) -> str:
    win = layer.window
    return g.node(
        op_type,
        [x],
        name=f"{layer.name}/{op_type}",
        kernel_shape=list(win.kernel),
        strides=list(win.stride),
        pads=list(win.pads),
        **attrs,
    )


def lower_maxpool2d(layer: MaxPool2d, g, x: str) -> str:
    """MaxPool with explicit pads (never auto_pad)."""
    return _lower("MaxPool", layer, g, x)


def lower_avgpool2d(layer: AvgPool2d, g, x: str) -> str:
    """AveragePool with explicit pads, padding excluded from the mean as in NumPy."""
    return _lower("AveragePool", layer, g, x, count_include_pad=0)


def _examples(spec_class, kind: str) -> list:
    def pool(**fields):
        return spec_class(kind=kind, **fields)

    image = (None, 2, 6, 5)
    return [
        (pool(kernel_size=2), image),  # odd width: the last column is never pooled
        (pool(kernel_size=3, stride=2), image),  # overlapping windows, as in AlexNet
        (pool(kernel_size=2, padding="same"), (None, 2, 5, 5)),  # pads bottom and right
        (pool(kernel_size=3, stride=1, padding=1), image),
        (pool(kernel_size=[2, 3], stride=[1, 2], padding=[1, 0]), image),
    ]


def examples_max() -> list[tuple[MaxPool2dSpec, Shape]]:
    """Small max poolings covering each padding and stride mode."""
    return _examples(MaxPool2dSpec, "maxpool2d")


def examples_avg() -> list[tuple[AvgPool2dSpec, Shape]]:
    """Small average poolings covering each padding and stride mode."""
    return _examples(AvgPool2dSpec, "avgpool2d")


KINDS = (
    LayerKind(
        MaxPool2dSpec,
        MaxPool2d,
        lower_maxpool2d,
        examples_max,
        docs=(
            DocCase(
                "{kind: maxpool2d, name: x, kernel_size: 2}",
                "`maxpool2d`",
                "Stride defaults to the kernel size.",
                image=True,
            ),
            DocCase(
                "{kind: maxpool2d, name: x, kernel_size: 3, stride: 1, padding: same}",
                "`maxpool2d`, padded",
                "Padding never wins the maximum.",
                image=True,
            ),
        ),
        takes_images=True,
    ),
    LayerKind(
        AvgPool2dSpec,
        AvgPool2d,
        lower_avgpool2d,
        examples_avg,
        docs=(
            DocCase(
                "{kind: avgpool2d, name: x, kernel_size: 3, stride: 1, padding: 1}",
                "`avgpool2d`",
                "Padding is left out of each mean (`count_include_pad=0`), as in training.",
                image=True,
            ),
        ),
        takes_images=True,
    ),
)
