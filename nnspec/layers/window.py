"""Sliding-window geometry shared by conv2d and the pooling layers (NCHW images).

One place computes padding, output sizes and the strided window view, so the NumPy forward
pass, ``output_shape`` and the ONNX attributes can never disagree about the geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveInt

from .base import Shape, ShapeError, dims

# YAML gives pairs as lists, and strict validation refuses a list for a tuple field.
PositivePair = Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
NonNegativePair = Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2)]
IntOrPair = PositiveInt | PositivePair
Padding = Literal["valid", "same"] | NonNegativeInt | NonNegativePair

PADDING_HELP = (
    "valid (no padding), same (output size ceil(input / stride); an odd total pad puts the "
    "extra row or column at the end, like ONNX SAME_UPPER), or an explicit number of rows "
    "and columns added on both sides: n or [pad_h, pad_w]."
)


def pair(value: int | list[int] | tuple[int, ...]) -> tuple[int, int]:
    """3 -> (3, 3); [3, 2] -> (3, 2): (height, width)."""
    if isinstance(value, int):
        return (value, value)
    h, w = value
    return (int(h), int(w))


def image_input(x: Shape) -> tuple[int, int, int]:
    """(channels, height, width) of an NCHW input shape, or a ShapeError that says how to fix it."""
    if len(x) == 2:
        raise ShapeError(
            "expected an image input (batch, channels, height, width), got a flat input "
            f"(batch, {x[1]}); give input: {{shape: [C, H, W]}}"
        )
    if len(x) == 3:
        raise ShapeError(
            "expected an image input (batch, channels, height, width), got a 2-D sample "
            f"shape {dims(x[1:])}; for one-channel images give input: "
            f"{{shape: [1, {x[1]}, {x[2]}]}}"
        )
    if len(x) != 4:
        raise ShapeError(
            "expected an image input (batch, channels, height, width), got a "
            f"{len(x) - 1}-D sample shape {dims(x[1:])}"
        )
    c, h, w = x[1:]
    return int(c), int(h), int(w)


@dataclass(frozen=True)
class Window:
    """Resolved geometry of a 2-D sliding window, all pairs as (height, width).

    ``pads`` is (top, left, bottom, right), the order of ONNX's ``pads`` attribute.
    """

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    out: tuple[int, int]


def _same_pads(size: int, span: int, stride: int) -> tuple[int, int]:
    # Enough padding that ceil(size / stride) windows fit; the odd row goes at the end.
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def resolve(
    x: Shape,
    kernel_size: IntOrPair,
    stride: IntOrPair,
    padding: Padding,
    dilation: IntOrPair = 1,
    what: str = "kernel",
) -> Window:
    """The window over an NCHW input ``x``; ShapeError when it does not fit the input.

    ``what`` names the window in messages ("kernel" for conv2d, "window" for pooling).
    """
    _, h, w = image_input(x)
    kernel, strides, dilations = pair(kernel_size), pair(stride), pair(dilation)
    # A k-tap kernel with dilation d spans (k - 1) * d + 1 pixels.
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True))
    if padding == "same":
        (top, bottom), (left, right) = (
            _same_pads(n, s, st) for n, s, st in zip((h, w), span, strides, strict=True)
        )
    elif padding == "valid":
        top = bottom = left = right = 0
    else:
        top, left = pair(padding)
        bottom, right = top, left
    padded = (h + top + bottom, w + left + right)
    if padded[0] < span[0] or padded[1] < span[1]:
        dilated = f" (dilated to {dims(span)})" if span != kernel else ""
        padded_note = f" (padded to {dims(padded)})" if padded != (h, w) else ""
        raise ShapeError(
            f"input {dims(x[1:])}{padded_note} is smaller than the {dims(kernel)} {what}{dilated}"
        )
    # One window that leaves part of the input unread: the stride can only be a mistake
    # (with "same", ceil(input / stride) outputs is what was asked for).
    skips = any(st > p and s < p for st, p, s in zip(strides, padded, span, strict=True))
    if skips and padding != "same":
        padded_note = f" (padded to {dims(padded)})" if padded != (h, w) else ""
        raise ShapeError(
            f"stride {dims(strides)} is larger than the input {dims(x[1:])}{padded_note}: the "
            f"{what} would be applied once and the rest of the input skipped"
        )
    out = tuple((p - s) // st + 1 for p, s, st in zip(padded, span, strides, strict=True))
    return Window(kernel, strides, dilations, (top, left, bottom, right), out)


def pad(x: np.ndarray, win: Window, value: float = 0.0) -> np.ndarray:
    """x (N, C, H, W) with the window's padding added around height and width."""
    top, left, bottom, right = win.pads
    if not any(win.pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def windows(xp: np.ndarray, win: Window) -> np.ndarray:
    """Read-only view (N, C, out_h, out_w, kh, kw) of every window of the padded input ``xp``.

    No copy: entry [n, c, i, j, p, q] is xp[n, c, i*sh + p*dh, j*sw + q*dw].
    """
    n, c = xp.shape[:2]
    sn, sc, sh, sw = xp.strides
    (st_h, st_w), (d_h, d_w) = win.stride, win.dilation
    return np.lib.stride_tricks.as_strided(
        xp,
        shape=(n, c, *win.out, *win.kernel),
        strides=(sn, sc, sh * st_h, sw * st_w, sh * d_h, sw * d_w),
        writeable=False,
    )


def window_slice(win: Window, p: int, q: int) -> tuple[slice, slice]:
    """Rows and columns of the padded input that kernel position (p, q) reads, one per output
    pixel: the inverse of ``windows`` for one kernel tap, used to scatter gradients back."""
    (oh, ow), (st_h, st_w), (d_h, d_w) = win.out, win.stride, win.dilation
    return (
        slice(p * d_h, p * d_h + (oh - 1) * st_h + 1, st_h),
        slice(q * d_w, q * d_w + (ow - 1) * st_w + 1, st_w),
    )


def unpad(dxp: np.ndarray, win: Window, hw: tuple[int, int]) -> np.ndarray:
    """Crop the padding off a gradient with respect to the padded input."""
    top, left = win.pads[0], win.pads[1]
    return dxp[:, :, top : top + hw[0], left : left + hw[1]]
