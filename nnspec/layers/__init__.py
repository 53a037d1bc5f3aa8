"""The layer registry: one explicit dict from ``kind`` to the kind's three faces.

To add a kind: write its module (spec with ``output_shape``, NumPy layer, ``lower_*`` and
``examples``), add one entry to ``LAYERS`` and one member to ``LayerSpec``. A test checks the two
agree, and the gradient and parity tests pick the new kind up from ``LAYERS``.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from . import batchnorm, conv, dense, dropout, flatten, lrn, pool
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


# fmt: off
LAYERS: dict[str, LayerKind] = _Registry(
    [
        ("dense", LayerKind(dense.DenseSpec, dense.Dense, dense.lower_dense, dense.examples)),
        ("conv2d", LayerKind(conv.Conv2dSpec, conv.Conv2d, conv.lower_conv2d, conv.examples)),
        ("maxpool2d", LayerKind(
            pool.MaxPool2dSpec, pool.MaxPool2d, pool.lower_maxpool2d, pool.examples_max)),
        ("avgpool2d", LayerKind(
            pool.AvgPool2dSpec, pool.AvgPool2d, pool.lower_avgpool2d, pool.examples_avg)),
        ("flatten", LayerKind(
            flatten.FlattenSpec, flatten.Flatten, flatten.lower_flatten, flatten.examples)),
        ("dropout", LayerKind(
            dropout.DropoutSpec, dropout.Dropout, dropout.lower_dropout, dropout.examples)),
        ("batchnorm", LayerKind(
            batchnorm.BatchNormSpec, batchnorm.BatchNorm, batchnorm.lower_batchnorm,
            batchnorm.examples)),
        ("lrn", LayerKind(lrn.LRNSpec, lrn.LRN, lrn.lower_lrn, lrn.examples)),
    ]
)
# fmt: on

# Kinds that take images (batch, channels, height, width): a spec using one on a built-in image
# dataset, with no `input`, gets the dataset's image shape.
IMAGE_KINDS = frozenset({"conv2d", "maxpool2d", "avgpool2d", "lrn"})

# The discriminated union that the spec's `layers` list is validated against.
LayerSpec = Annotated[
    Union[  # noqa: UP007
        dense.DenseSpec,
        conv.Conv2dSpec,
        pool.MaxPool2dSpec,
        pool.AvgPool2dSpec,
        flatten.FlattenSpec,
        dropout.DropoutSpec,
        batchnorm.BatchNormSpec,
        lrn.LRNSpec,
    ],
    Field(discriminator="kind"),
]

__all__ = [
    "IMAGE_KINDS",
    "LAYERS",
    "Layer",
    "LayerKind",
    "LayerSpec",
    "Shape",
    "ShapeError",
    "SpecModel",
]
