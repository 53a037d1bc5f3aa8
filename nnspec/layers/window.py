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


def fit_window(
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


# -- The batch-last layout of the NumPy image layers --------------------------------------
#
# conv2d and the pooling layers take and return (N, C, H, W) arrays, as ONNX does, but keep
# their images in memory as (C, H, W, N): the array a layer returns is a transposed *view* of
# that memory, and the next image layer takes it back without a copy. With the batch last, a
# kernel tap's slice of the image, x[c, y0:y1, x0:x1, :], is made of runs of (width x batch)
# contiguous numbers, where (N, C, H, W) gives runs of one image row (8 numbers in LeNet's
# second convolution); im2col, col2im and pooling are copies and sums of such slices, and the
# convolution's matrix products then come out in the same layout, with no transposes. Any
# other layer sees an ordinary (N, C, H, W) array (flatten copies it to row order).


def to_chwn(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> its (C, H, W, N) contiguous form: free when x is a view of one."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0))


def from_chwn(xt: np.ndarray) -> np.ndarray:
    """(C, H, W, N) -> the (N, C, H, W) view of the same memory."""
    return xt.transpose(3, 0, 1, 2)


def pad(xt: np.ndarray, win: Window, value: float = 0.0) -> np.ndarray:
    """xt (C, H, W, N) with the window's padding added around height and width."""
    top, left, bottom, right = win.pads
    if not any(win.pads):
        return xt
    return np.pad(xt, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def unpad(dxp: np.ndarray, win: Window, hw: tuple[int, int]) -> np.ndarray:
    """Crop the padding off dxp (C, H + pads, W + pads, N), a gradient with respect to the
    padded input."""
    top, left = win.pads[0], win.pads[1]
    return dxp[:, top : top + hw[0], left : left + hw[1]]


def windows(xp: np.ndarray, win: Window) -> np.ndarray:
    """Read-only view (C, kh, kw, out_h, out_w, N) of every window of the padded input
    xp (C, H, W, N).

    No copy: entry [c, p, q, i, j, n] is xp[c, i*sh + p*dh, j*sw + q*dw, n]. Reshaped to
    (C kh kw, out_h out_w N) it is the im2col matrix, and the copy that reshaping makes reads
    runs of out_w * N numbers when the stride is 1.
    """
    c = xp.shape[0]
    sc, sh, sw, sn = xp.strides
    (st_h, st_w), (d_h, d_w) = win.stride, win.dilation
    return np.lib.stride_tricks.as_strided(
        xp,
        shape=(c, *win.kernel, *win.out, xp.shape[3]),
        strides=(sc, sh * d_h, sw * d_w, sh * st_h, sw * st_w, sn),
        writeable=False,
    )


def taps(xp: np.ndarray, win: Window):
    """(tap index, view (C, out_h, out_w, N)) for each kernel tap of the padded input xp
    (C, H, W, N): the input pixel that tap reads in every window."""
    kh, kw = win.kernel
    for ky in range(kh):
        for kx in range(kw):
            yield ky * kw + kx, xp[(slice(None), *window_slice(win, ky, kx))]


def window_slice(win: Window, p: int, q: int) -> tuple[slice, slice]:
    """Rows and columns of the padded input that kernel position (p, q) reads, one per output
    pixel: the inverse of ``windows`` for one kernel tap, used to scatter gradients back."""
    (oh, ow), (st_h, st_w), (d_h, d_w) = win.out, win.stride, win.dilation
    return (
        slice(p * d_h, p * d_h + (oh - 1) * st_h + 1, st_h),
        slice(q * d_w, q * d_w + (ow - 1) * st_w + 1, st_w),
    )
