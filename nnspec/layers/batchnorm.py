"""Batch normalization over (batch, features) or per channel over (batch, channels, h, w)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from .base import DocCase, Layer, LayerKind, ParamLayerSpecBase, Shape, ShapeError, dims


class BatchNormSpec(ParamLayerSpecBase):
    """Normalizes each feature (2-D input) or channel (4-D NCHW input), then scales and
    shifts it: ``y = scale * (x - mean) / sqrt(var + epsilon) + bias``."""

    kind: Literal["batchnorm"] = Field(
        description="Layer kind: batch normalization, per feature of (batch, features) or "
        "per channel of (batch, channels, height, width)."
    )
    momentum: float = Field(
        default=0.9,
        ge=0,
        lt=1,
        description="Weight of the old running statistics in each training-step update, "
        "running = momentum * running + (1 - momentum) * batch (as ONNX and Keras define it; "
        "PyTorch's momentum is 1 minus this).",
    )
    epsilon: float = Field(
        default=1e-5,
        gt=0,
        description="Added to the variance before its square root, for numerical stability.",
    )

    def output_shape(self, x: Shape) -> Shape:
        if len(x) not in (2, 4):
            raise ShapeError(
                "expected (batch, features) or (batch, channels, height, width), got a "
                f"{len(x) - 1}-D sample shape {dims(x[1:])}"
            )
        return x

    def param_count(self, x: Shape) -> int:
        """4 * channels: scale and bias, plus the running mean and variance, which are
        exported and loaded like weights (Keras counts them too, as non-trainable)."""
        return 4 * int(x[1])


class BatchNorm(Layer):
    """Parameters ``scale`` (gamma, ones) and ``bias`` (beta, zeros); state ``running_mean``
    (zeros) and ``running_var`` (ones); all of shape (channels,).

    Training (``training=True`` and trainable): normalizes with the batch statistics and
    updates the running ones in place. Inference, or a frozen layer: uses the running
    statistics and never changes them (how Keras freezes BatchNormalization).
    """

    def __init__(self, spec: BatchNormSpec, name: str, in_shape: Shape, rng, dtype):
        channels = int(in_shape[1])
        self.name = name
        self.momentum = spec.momentum
        self.epsilon = spec.epsilon
        self.trainable = spec.trainable
        # Statistics over the batch, plus height and width for images: one value per channel.
        self.axes = (0,) if len(in_shape) == 2 else (0, 2, 3)
        self.bshape = (1, channels) if len(in_shape) == 2 else (1, channels, 1, 1)
        self.params = {"scale": np.ones(channels, dtype), "bias": np.zeros(channels, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.state = {
            "running_mean": np.zeros(channels, dtype),
            "running_var": np.ones(channels, dtype),
        }

    def _b(self, v: np.ndarray) -> np.ndarray:
        """A (channels,) vector shaped to broadcast against the input."""
        return v.reshape(self.bshape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (batch, C) or (batch, C, h, w) -> y of the same shape and dtype."""
        self._batch_stats = training and self.trainable
        if self._batch_stats:
            mean = x.mean(axis=self.axes)
            var = x.var(axis=self.axes)  # biased (divides by n): what normalizes the batch
            n = x.size // mean.size
            if n > 1:  # one value per channel has no variance estimate: leave the state be
                m = self.momentum
                # The running variance gets the UNBIASED estimate (times n/(n-1)), as PyTorch
                # does: it estimates the population that inference will see.
                rm, rv = self.state["running_mean"], self.state["running_var"]
                rm[...] = m * rm + (1 - m) * mean
                rv[...] = m * rv + (1 - m) * var * (n / (n - 1))
        else:
            mean, var = self.state["running_mean"], self.state["running_var"]
        inv_std = 1 / np.sqrt(var + x.dtype.type(self.epsilon))
        xhat = (x - self._b(mean)) * self._b(inv_std)
        if training:
            self._xhat, self._inv_std = xhat, inv_std
        return xhat * self._b(self.params["scale"]) + self._b(self.params["bias"])

    def backward(
        self, dy: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """dy -> dL/dx, same shape; fills ``grads`` unless the layer is frozen."""
        xhat, inv_std = self._xhat, self._b(self._inv_std)
        if self.trainable:
            # y = scale * xhat + bias, per channel.
            np.sum(dy * xhat, axis=self.axes, out=self.grads["scale"])
            np.sum(dy, axis=self.axes, out=self.grads["bias"])
        if not input_grad:
            return None
        dxhat = dy * self._b(self.params["scale"])
        if not self._batch_stats:
            # Running statistics are constants here: the layer is an affine map of x.
            return dxhat * inv_std
        # With batch statistics, mean and var depend on every x in the channel. Differentiating
        # xhat = (x - mean) * inv_std through them gives the standard batch-norm gradient
        #   dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
        # the means taken per channel over the same axes as the statistics.
        mean_d = dxhat.mean(axis=self.axes, keepdims=True)
        mean_dx = (dxhat * xhat).mean(axis=self.axes, keepdims=True)
        return inv_std * (dxhat - mean_d - xhat * mean_dx)


def lower_batchnorm(layer: BatchNorm, g, x: str) -> str:
    """ONNX BatchNormalization in inference form (running statistics, one output); it takes
    (N, C) as well as (N, C, H, W) input."""
    inputs = [x] + [
        g.initializer(f"{layer.name}.{key}", source[key])
        for source, key in [
            (layer.params, "scale"),
            (layer.params, "bias"),
            (layer.state, "running_mean"),
            (layer.state, "running_var"),
        ]
    ]
    return g.node(
        "BatchNormalization", inputs, name=f"{layer.name}/BatchNormalization", epsilon=layer.epsilon
    )


def examples() -> list[tuple[BatchNormSpec, Shape]]:
    """Flat features and image channels; checked in training mode (batch statistics)."""
    return [
        (BatchNormSpec(kind="batchnorm"), (None, 4)),
        (BatchNormSpec(kind="batchnorm", momentum=0.5, epsilon=1e-3), (None, 3, 2, 2)),
    ]


KINDS = (
    LayerKind(
        BatchNormSpec,
        BatchNorm,
        lower_batchnorm,
        examples,
        docs=(
            DocCase(
                "{kind: batchnorm, name: x}",
                "`batchnorm` on features",
                "Inference form: the running mean and variance, one output.",
            ),
            DocCase(
                "{kind: batchnorm, name: x, epsilon: 0.001}",
                "`batchnorm` on images",
                "Per channel of (batch, channels, height, width).",
                image=True,
            ),
        ),
        # Every array is one value per input channel.
        input_axes={"scale": (0,), "bias": (0,), "running_mean": (0,), "running_var": (0,)},
    ),
)
