"""What every layer kind provides: a spec model, a NumPy layer, an ONNX lowering."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..nn import initializers
from ..nn.activations import ACTIVATIONS

if TYPE_CHECKING:
    from ..onnxio.graph import GraphBuilder

# A shape without the batch axis is never written: the batch is always first and is None.
Shape = tuple[int | None, ...]


class SpecModel(BaseModel):
    """Base of every spec model: frozen, unknown keys rejected, no silent type coercion.

    ``strict`` keeps YAML's own types: ``units: "10"`` is an error rather than 10, and
    ``units: true`` is not 1. (An integer is still accepted where a float is expected.)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


ActivationName = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
InitializerName = Literal[("auto", *initializers.INITIALIZERS)]  # type: ignore[valid-type]


class LayerSpecBase(SpecModel):
    """Fields every layer kind has. Subclasses add ``kind`` (the union's tag), their own
    fields, ``output_shape(x) -> Shape`` (raises ``ShapeError``) and ``param_count(x)``."""

    name: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="Layer name, used for parameter and ONNX node names and for matching "
        "weights in init.from (default: `<kind>_<index>`): a letter or `_`, then letters, "
        "digits, `_`, `.` or `-`.",
    )

    def param_count(self, x: Shape) -> int:
        return 0


class ParamLayerSpecBase(LayerSpecBase):
    """A layer with learned parameters, which can be frozen."""

    trainable: bool = Field(
        default=True,
        description="false freezes the layer: its weights (and batchnorm statistics) stay "
        "bit-identical through training. Only for layers loaded by init.from: a frozen layer "
        "that is not loaded is an error.",
    )


def dims(shape) -> str:
    """(16, 1, 1) -> '16×1×1', the way shapes are written in messages."""
    return "×".join(str(d) for d in shape)


class ShapeError(ValueError):
    """Raised by ``output_shape``; shape inference prefixes it with the layer and location."""


class Layer:
    """NumPy side of a layer.

    ``params`` and ``grads`` map a parameter name (``"weight"``, ``"bias"``) to arrays that
    the optimizer updates in place; ``forward`` caches what ``backward`` reuses. ``state``
    holds arrays that are exported and loaded like parameters but not learned by gradients
    (batchnorm's running statistics). ``trainable`` False (a frozen layer): ``backward`` may
    skip its parameter gradients, and the layer behaves as at inference.
    """

    name: str
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    state: dict[str, np.ndarray] = {}  # read-only default; layers with state set their own
    trainable: bool = True
    # Set by the network on an output layer whose loss is fused with its activation
    # (softmax + cross-entropy): a training forward pass then returns the pre-activation z,
    # and the loss applies the activation (backward is then asked for wrt_preactivation).
    defer_activation: bool = False

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def activate(self, z: np.ndarray, training: bool) -> np.ndarray:
        """The layer's activation ``self.act`` applied to its fresh pre-activation ``z``
        (which it may overwrite); in training, caches ``_z`` and ``_a`` for backward."""
        if not training:
            return self.act.forward_(z)
        if self.defer_activation:  # the fused loss applies it
            self._z, self._a = z, None
            return z
        if self.act.uses_z:
            self._z, self._a = z, self.act.forward(z)
        else:  # the derivative needs only a: overwrite z, one buffer less
            self._z, self._a = None, self.act.forward_(z)
        return self._a

    def backward(
        self, dy: np.ndarray, *, wrt_preactivation: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """dL/d(output) -> dL/d(input); fills ``grads``. ``wrt_preactivation``: the loss
        already differentiated through this layer's activation (only asked of output layers).
        ``input_grad`` False: nothing below needs dL/d(input) (the lowest layer that learns);
        a layer may then skip computing it and return None.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class LayerKind:
    """One registry entry: the three faces of a layer kind, plus examples for the tests.

    ``examples`` returns ``(spec, input_shape)`` pairs that the test suite runs through the
    float64 gradient check and the onnxruntime parity check, so a registered kind is always
    tested.
    """

    spec: type[SpecModel]
    layer: Callable[..., Layer]
    lower: Callable[[Any, GraphBuilder, str], str]
    examples: Callable[[], list[tuple[Any, Shape]]]
