"""2-D convolution: ``(batch, C, H, W) -> (batch, filters, H', W')``, then an activation.

The NumPy pass is im2col: a strided view gathers every window without copying, one reshape
copies them into a matrix, and one batched matrix product over the groups does the rest.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt

from ..nn import activations, initializers
from ..nn.activations import ACTIVATIONS
from ..nn.numeric import ones
from . import window
from .base import (
    DocCase,
    InitializerName,
    Layer,
    LayerKind,
    ParamLayerSpecBase,
    Shape,
    ShapeError,
)
from .window import IntOrPair, Padding

# Softmax normalizes across the units of a flat output: over feature maps it means nothing.
HiddenActivationName = Literal[activations.HIDDEN]  # type: ignore[valid-type]


class Conv2dSpec(ParamLayerSpecBase):
    """2-D convolution over NCHW images: ``(batch, C, H, W) -> (batch, filters, H', W')``."""

    kind: Literal["conv2d"] = Field(description="Layer kind: a 2-D convolution (ONNX Conv).")
    filters: PositiveInt = Field(description="Number of output channels (feature maps).")
    kernel_size: IntOrPair = Field(description="Kernel height and width: n for n×n, or [kh, kw].")
    stride: IntOrPair = Field(
        default=1, description="Step between windows: n, or [stride_h, stride_w]."
    )
    padding: Padding = Field(
        default="valid", description="Padding of the input: " + window.PADDING_HELP
    )
    dilation: IntOrPair = Field(
        default=1,
        description="Spacing between kernel taps: n, or [dilation_h, dilation_w]; a k×k kernel "
        "with dilation d spans (k - 1) * d + 1 pixels.",
    )
    groups: PositiveInt = Field(
        default=1,
        description="Split the input channels and filters into this many groups, each "
        "convolved separately (ONNX Conv group); both counts must be divisible by it.",
    )
    activation: HiddenActivationName = Field(
        default="identity",
        description="Non-linearity applied to the convolution's output: "
        + activations.in_prose(activations.HIDDEN)
        + f" ({activations.in_prose(activations.OUTPUT_ONLY)} is for flat outputs only).",
    )
    initializer: InitializerName = Field(
        default="auto",
        description=initializers.HELP + ", with fan-in C / groups * kh * kw. Biases start at zero.",
    )
    use_bias: bool = Field(default=True, description="Add a learned bias per filter.")

    def geometry(self, x: Shape) -> window.Window:
        """The resolved window over input ``x``; ShapeError when it does not fit."""
        channels = window.image_input(x)[0]
        for what, count in (("input channels", channels), ("filters", self.filters)):
            if count % self.groups:
                raise ShapeError(
                    f"groups {self.groups} does not divide the {count} {what}; both the input "
                    "channels and the filters must be multiples of groups"
                )
        return window.fit_window(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def output_shape(self, x: Shape) -> Shape:
        return (x[0], self.filters, *self.geometry(x).out)

    def param_count(self, x: Shape) -> int:
        kh, kw = window.pair(self.kernel_size)
        weights = self.filters * (int(x[1]) // self.groups) * kh * kw
        return weights + (self.filters if self.use_bias else 0)


class Conv2d(Layer):
    """Parameters: ``weight`` of shape (filters, C / groups, kh, kw), the layout of ONNX Conv's
    W, and ``bias`` of shape (filters,). ``window`` and ``groups`` hold the resolved geometry
    that the ONNX lowering writes as attributes."""

    def __init__(self, spec: Conv2dSpec, name: str, in_shape: Shape, rng, dtype):
        self.name = name
        self.trainable = spec.trainable
        self.activation = spec.activation
        self.act = ACTIVATIONS[spec.activation]
        self.window = spec.geometry(in_shape)
        self.groups = spec.groups
        kh, kw = self.window.kernel
        per_group_in, per_group_out = int(in_shape[1]) // spec.groups, spec.filters // spec.groups
        init = initializers.initializer_for(spec.initializer, spec.activation)
        shape = (spec.filters, per_group_in, kh, kw)
        weight = init(rng, per_group_in * kh * kw, per_group_out * kh * kw, shape)
        self.params = {"weight": weight.astype(dtype)}
        if spec.use_bias:
            self.params["bias"] = np.zeros(spec.filters, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def _grouped_weight(self) -> np.ndarray:
        """weight as (groups, filters per group, C per group * kh * kw): one matrix per group."""
        w = self.params["weight"]
        return w.reshape(self.groups, w.shape[0] // self.groups, -1)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (batch, C, H, W) -> a: (batch, filters, H', W'), a view of (filters, H', W',
        batch) memory (the batch-last layout of window.py)."""
        n = x.shape[0]
        g, (oh, ow) = self.groups, self.window.out
        view = window.windows(window.pad(window.to_chwn(x), self.window), self.window)
        # im2col with the batch inside the columns: per group one (C/g kh kw, H' W' N)
        # matrix, rows (channel, ky, kx), so that each group is ONE large matrix product
        # rather than a small one per sample.
        cols = view.reshape(g, -1, oh * ow * n)
        # (groups, filters/g, K) @ (groups, K, H'W'N) -> (filters, H', W', N)
        z = np.matmul(self._grouped_weight(), cols).reshape(-1, oh, ow, n)
        if "bias" in self.params:
            z += self.params["bias"][:, None, None, None]
        if training:
            self._x_shape, self._cols = x.shape, cols
        return window.from_chwn(self.activate(z, training))

    def backward(
        self, da: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """da: dL/da (batch, filters, H', W') -> dL/dx (batch, C, H, W).

        Reuses the im2col matrices and a (z where the activation needs it) cached by
        ``forward``, all batch-last. ``wrt_preactivation`` means ``da`` already is dL/dz.
        """
        da = window.to_chwn(da)  # free when da came from a batch-last layer
        dz = da if wrt_preactivation else self.act.backward(self._z, self._a, da)
        n, c, h, w = self._x_shape
        g, (oh, ow), (kh, kw) = self.groups, self.window.out, self.window.kernel
        dz_cols = dz.reshape(g, -1, oh * ow * n)  # the column order of cols: no copy
        # z = W cols + b  =>  dL/dW = dz cols^T, dL/db = sums of dz, dL/dcols = W^T dz.
        if self.trainable:
            dw = self.grads["weight"].reshape(g, -1, self._cols.shape[1])  # a view: fills grads
            np.matmul(dz_cols, self._cols.transpose(0, 2, 1), out=dw)
            if "bias" in self.params:
                np.matmul(
                    dz.reshape(len(dz), -1), ones(oh * ow * n, dz.dtype), out=self.grads["bias"]
                )
        if not input_grad:
            return None
        # (groups, K, H'W'N) = (C, kh, kw, H', W', N): one (C, H', W', N) block per kernel tap.
        dcols = np.matmul(self._grouped_weight().transpose(0, 2, 1), dz_cols)
        dcols = dcols.reshape(c, kh, kw, oh, ow, n)
        top, left, bottom, right = self.window.pads
        dxp = np.zeros((c, h + top + bottom, w + left + right, n), dtype=dz.dtype)
        # col2im: each tap read one strided slice of the padded input, so its block adds back
        # onto that slice (runs of W' N contiguous numbers); overlapping windows accumulate.
        for ky in range(kh):
            for kx in range(kw):
                ys, xs = window.window_slice(self.window, ky, kx)
                dxp[:, ys, xs] += dcols[:, ky, kx]
        return window.from_chwn(window.unpad(dxp, self.window, (h, w)))


def lower_conv2d(layer: Conv2d, g, x: str) -> str:
    """Conv with explicit pads (never auto_pad), then the activation's ops."""
    inputs = [x, g.initializer(f"{layer.name}.weight", layer.params["weight"])]
    if "bias" in layer.params:
        inputs.append(g.initializer(f"{layer.name}.bias", layer.params["bias"]))
    win = layer.window
    z = g.node(
        "Conv",
        inputs,
        name=f"{layer.name}/Conv",
        kernel_shape=list(win.kernel),
        strides=list(win.stride),
        pads=list(win.pads),
        dilations=list(win.dilation),
        group=layer.groups,
    )
    return ACTIVATIONS[layer.activation].lower(g, z, f"{layer.name}/{layer.activation}")


def examples() -> list[tuple[Conv2dSpec, Shape]]:
    """Small convolutions covering each padding, stride, dilation and grouping mode."""

    def conv(**fields) -> Conv2dSpec:
        return Conv2dSpec(kind="conv2d", **fields)

    image = (None, 2, 6, 5)
    return [
        (conv(filters=3, kernel_size=3), image),
        (conv(filters=2, kernel_size=3, stride=2, padding="same", activation="tanh"), image),
        (conv(filters=2, kernel_size=[2, 4], padding="same", use_bias=False), image),
        (conv(filters=2, kernel_size=3, stride=[2, 1], padding=1), image),
        (conv(filters=2, kernel_size=[3, 2], padding=[2, 0], activation="logistic"), image),
        (conv(filters=2, kernel_size=2, dilation=[2, 1], padding="same"), image),
        (conv(filters=2, kernel_size=2, dilation=2, stride=2), image),
        (
            conv(filters=4, kernel_size=3, groups=2, padding="same", activation="tanh"),
            (None, 4, 5, 4),
        ),
    ]


def im2col_elements(spec: Conv2dSpec, in_shape: Shape) -> int:
    """Values per sample of the im2col matrix that a training forward pass keeps for backward:
    each output pixel's whole window, C * kh * kw * H' * W'."""
    kh, kw = window.pair(spec.kernel_size)
    out = spec.output_shape(in_shape)
    return int(in_shape[1]) * kh * kw * math.prod(out[2:])


KINDS = (
    LayerKind(
        Conv2dSpec,
        Conv2d,
        lower_conv2d,
        examples,
        docs=(
            DocCase(
                "{kind: conv2d, name: x, filters: 4, kernel_size: 3}",
                "`conv2d`",
                "Weight (filters, channels / groups, kh, kw), ONNX's layout. Padding is always "
                "explicit (`pads`), never `auto_pad`.",
                image=True,
            ),
            DocCase(
                "{kind: conv2d, name: x, filters: 4, kernel_size: 2, padding: same}",
                "`conv2d`, `padding: same`",
                "An odd total padding puts the extra row and column at the bottom and right, as "
                "TensorFlow and ONNX SAME_UPPER do.",
                image=True,
            ),
            DocCase(
                "{kind: conv2d, name: x, filters: 4, kernel_size: [3, 2], padding: [1, 0]}",
                "`conv2d`, explicit padding",
                "`[ph, pw]` pads top and bottom by ph, left and right by pw.",
                image=True,
            ),
            DocCase(
                "{kind: conv2d, name: x, filters: 4, kernel_size: 3, stride: 2, dilation: 2, "
                "groups: 2, activation: relu}",
                "`conv2d`, stride, dilation, groups and an activation",
                "The activation follows as its own node(s).",
                image=True,
            ),
        ),
        takes_images=True,
        # weight (filters, C / groups, kh, kw): all but the filters follow the input.
        input_axes={"weight": (1, 2, 3), "bias": ()},
        cache_elements=im2col_elements,
    ),
)
