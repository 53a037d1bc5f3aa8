"""The layer registry: one explicit dict from ``kind`` to the kind's three faces.

To add a kind: write its module (spec with ``output_shape``, NumPy layer, ``lower_*`` and
``examples``), add one entry to ``LAYERS`` and one member to ``LayerSpec``. A test checks the two
agree, and the gradient and parity tests pick the new kind up from ``LAYERS``.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from . import dense
from .base import Layer, LayerKind, Shape, ShapeError, SpecModel


class _Registry(dict):
    """A dict literal that refuses duplicate keys and names the known ones on a miss."""

    def __init__(self, entries: list[tuple[str, LayerKind]]):
        super().__init__()
        for key, value in entries:
            if key in self:
                raise ValueError(f"layer kind {key!r} is registered twice")
            self[key] = value

    def __missing__(self, key):
        raise KeyError(f"unknown layer kind {key!r}; {len(self)} registered: {', '.join(self)}")


LAYERS: dict[str, LayerKind] = _Registry(
    [
        ("dense", LayerKind(dense.DenseSpec, dense.Dense, dense.lower_dense, dense.examples)),
    ]
)

# The discriminated union that the spec's `layers` list is validated against. With one kind it
# is that kind; later kinds are added as Union members.
LayerSpec = Annotated[Union[dense.DenseSpec], Field(discriminator="kind")]  # noqa: UP007

__all__ = ["LAYERS", "Layer", "LayerKind", "LayerSpec", "Shape", "ShapeError", "SpecModel"]
