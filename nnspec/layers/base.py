"""What every layer kind provides: a spec model, a NumPy layer, an ONNX lowering, and the
``LayerKind`` record that registers them with the hooks the rest of nnspec asks a kind for."""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
        description="false freezes the layer: its weights (and any running statistics) stay "
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
    (running statistics, in a kind that keeps them). ``trainable`` False (a frozen layer):
    ``backward`` may skip its parameter gradients, and the layer behaves as at inference.
    """

    name: str
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    trainable: bool = True
    # Set by the network on an output layer whose loss is fused with its activation
    # (softmax + cross-entropy): a training forward pass then returns the pre-activation z,
    # and the loss applies the activation (backward is then asked for wrt_preactivation).
    defer_activation: bool = False

    @property
    def state(self) -> dict[str, np.ndarray]:
        """Per layer, made on first use: most kinds have none, and a dict shared through the
        class would let one layer's arrays appear in every other layer's state."""
        return self.__dict__.setdefault("state", {})

    @state.setter
    def state(self, arrays: dict[str, np.ndarray]) -> None:
        self.__dict__["state"] = arrays

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


def no_cache(spec: Any, in_shape: Shape) -> int:
    """The default of ``LayerKind.cache_elements``: nothing kept beyond the output."""
    return 0


@dataclass(frozen=True)
class DocCase:
    """One row of the layer table of docs/onnx.md: this layer, named ``x``, exported between
    a small input (3 features, or 4×6×6 images) and a softmax output, and the ONNX nodes and
    initializers that the export emits for it."""

    shown: str  # the layer as written in a spec, a YAML flow mapping with ``name: x``
    construct: str  # the row's first column, Markdown: "`dense` without bias"
    note: str = ""  # the notes column, the only text of the row written by hand
    image: bool = False  # images (batch, 4, 6, 6) as input rather than (batch, 3) features


@dataclass(frozen=True)
class LayerKind:
    """One registry record: everything the rest of nnspec knows about a layer kind.

    The three faces: ``spec`` (the Pydantic model, whose ``kind`` literal names the kind),
    ``layer`` (the NumPy layer: ``layer(spec, name, in_shape, rng, dtype)``) and ``lower``
    (``lower(layer, graph, input_name) -> output_name``, the ONNX nodes). The rest has
    defaults that suit most kinds:

    - ``examples`` returns ``(spec, input_shape)`` pairs that the generic tests run through
      the float64 gradient check and the onnxruntime parity check, so a registered kind is
      always tested.
    - ``docs``: its rows of docs/onnx.md (at least one).
    - ``takes_images``: whether the kind wants (batch, channels, height, width) input, so that
      a spec using it on a built-in image dataset with no ``input`` gets the image shape.
    - ``input_axes``: for ``init.from``, each array the layer keeps (params and state) with
      the axes that follow the layer's input; a shape difference elsewhere is on the output
      side (a new head), one here means the spec and the model disagree about the input.
      An array left out counts as all input.
    - ``cache_elements(spec, in_shape)``: values per sample that a training forward pass
      keeps beyond the layer's output (conv2d's im2col matrix), for the memory estimate.
    """

    spec: type[LayerSpecBase]
    layer: Callable[..., Layer]
    lower: Callable[[Any, GraphBuilder, str], str]
    examples: Callable[[], list[tuple[Any, Shape]]]
    docs: tuple[DocCase, ...]
    takes_images: bool = False
    input_axes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    cache_elements: Callable[[Any, Shape], int] = no_cache

    @property
    def name(self) -> str:
        """The ``kind`` that selects it in a spec: the value of its spec's ``kind`` literal."""
        return kind_of(self.spec)


def kind_of(spec: type[SpecModel]) -> str:
    """The single value of the model's ``kind: Literal[...]`` field; TypeError without one."""
    field_info = spec.model_fields.get("kind")
    values = typing.get_args(field_info.annotation) if field_info is not None else ()
    if (
        field_info is None
        or typing.get_origin(field_info.annotation) is not Literal
        or (len(values) != 1 or not isinstance(values[0], str))
    ):
        raise TypeError(
            f"{spec.__name__}: expected a field kind: Literal['<name>'] with one string, got "
            f"{field_info.annotation if field_info is not None else 'no kind field'}"
        )
    return values[0]
