"""Fully connected layer: ``(batch, in_features) -> (batch, units)``, then an activation."""

from __future__ import annotations

from typing import Literal, Union

import numpy as np
from pydantic import Field, PositiveInt

from ..nn import activations, initializers
from ..nn.activations import ACTIVATIONS
from ..nn.numeric import ones
from .base import (
    ActivationName,
    DocCase,
    InitializerName,
    Layer,
    LayerKind,
    ParamLayerSpecBase,
    Shape,
    ShapeError,
    dims,
)


class DenseSpec(ParamLayerSpecBase):
    """Fully connected layer: ``(batch, in_features) -> (batch, units)``."""

    kind: Literal["dense"] = Field(description="Layer kind: a fully connected layer.")
    units: Union[PositiveInt, Literal["auto"]] = Field(  # noqa: UP007
        description="Number of output units (neurons) of this layer. The output layer may say "
        "auto: as many as the data's classes (1 for a two-class logistic output), or its "
        "regression targets."
    )
    activation: ActivationName = Field(
        default="identity",
        description="Non-linearity applied to the linear response x W + b: "
        + activations.in_prose(ACTIVATIONS, glossed=True)
        + ".",
    )
    initializer: InitializerName = Field(
        default="auto",
        description=initializers.HELP + ". Biases start at zero.",
    )
    use_bias: bool = Field(default=True, description="Add a learned bias b to x W.")

    def output_shape(self, x: Shape) -> Shape:
        if len(x) != 2:
            raise ShapeError(
                f"expected a flat input (batch, features), got a {len(x) - 1}-D sample shape "
                f"{dims(x[1:])}; put a flatten layer before it"
            )
        return (x[0], self.units)

    def param_count(self, x: Shape) -> int | None:
        if self.units == "auto":  # not known until the data is: validate without data
            return None
        return int(x[-1]) * self.units + (self.units if self.use_bias else 0)


class Dense(Layer):
    """Parameters: ``weight`` of shape (in_features, units), ``bias`` of shape (units,)."""

    def __init__(self, spec: DenseSpec, name: str, in_shape: Shape, rng, dtype):
        fan_in = int(in_shape[-1])
        self.name = name
        self.activation = spec.activation
        self.act = ACTIVATIONS[spec.activation]
        init = initializers.initializer_for(spec.initializer, spec.activation)
        self.params = {"weight": init(rng, fan_in, spec.units, (fan_in, spec.units)).astype(dtype)}
        if spec.use_bias:
            self.params["bias"] = np.zeros(spec.units, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (batch, in_features) -> a: (batch, units)."""
        z = x @ self.params["weight"]
        if "bias" in self.params:
            z += self.params["bias"]
        if training:
            self._x = x
        return self.activate(z, training)

    def backward(
        self, da: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """da: dL/da (batch, units) -> dL/dx (batch, in_features).

        Reuses x, a (and z for activations that need it) cached by ``forward``.
        ``wrt_preactivation`` means ``da`` already is dL/dz, as a loss fused with the output
        activation returns it (softmax + cross-entropy).
        """
        dz = da if wrt_preactivation else self.act.backward(self._z, self._a, da)
        # z = x W + b  =>  dL/dW = x^T dz, dL/db = column sums of dz, dL/dx = dz W^T.
        if self.trainable:
            np.matmul(self._x.T, dz, out=self.grads["weight"])
            if "bias" in self.params:
                # Column sums as a matrix-vector product: faster than dz.sum(axis=0).
                np.matmul(ones(len(dz), dz.dtype), dz, out=self.grads["bias"])
        if not input_grad:
            return None
        return dz @ self.params["weight"].T


def lower_dense(layer: Dense, g, x: str) -> str:
    """Gemm (+ the activation's ops); node names come from the layer's name."""
    inputs = [x, g.initializer(f"{layer.name}.weight", layer.params["weight"])]
    if "bias" in layer.params:
        inputs.append(g.initializer(f"{layer.name}.bias", layer.params["bias"]))
    z = g.node("Gemm", inputs, name=f"{layer.name}/Gemm")
    return ACTIVATIONS[layer.activation].lower(g, z, f"{layer.name}/{layer.activation}")


def examples() -> list[tuple[DenseSpec, Shape]]:
    """One small dense layer per activation, for the gradient and parity tests."""
    return [
        (DenseSpec(kind="dense", units=3, activation=act), (None, 4)) for act in ACTIVATIONS
    ] + [(DenseSpec(kind="dense", units=2, use_bias=False), (None, 3))]


KINDS = (
    LayerKind(
        DenseSpec,
        Dense,
        lower_dense,
        examples,
        docs=(
            DocCase("{kind: dense, name: x, units: 4}", "`dense`", "Weight (in, out): x W + b."),
            DocCase(
                "{kind: dense, name: x, units: 4, use_bias: false}",
                "`dense` without bias",
                "Gemm with two inputs.",
            ),
        ),
        input_axes={"weight": (0,), "bias": ()},  # weight (in_features, units)
    ),
)
