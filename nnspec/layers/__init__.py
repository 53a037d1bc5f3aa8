"""The layer kinds: one module each (pool.py holds both windowed poolings, which share their
geometry), registered here in one line per module.

To add a kind: write ``nnspec/layers/<module>.py`` with its spec (``kind`` literal, fields,
``output_shape``), its NumPy layer, its ``lower_*`` function and a ``KINDS`` tuple holding its
``LayerKind`` record (examples for the generic tests, doc cases for docs/onnx.md, and the hooks
whose defaults do not fit), add the module's line to ``_MODULES``, and regenerate the generated
files (docs/spec.md, docs/onnx.md, nnspec/schema.json). The spec's ``layers`` union, the
schema, the docs and the generic gradient, parity and docs tests all follow from ``LAYERS``;
a kind defined elsewhere (a plugin) joins with ``LAYERS.register(LayerKind(...))``.
"""

from __future__ import annotations

import importlib

from .base import DocCase, Layer, LayerKind, Shape, ShapeError, SpecModel
from .registry import Registry

LAYERS = Registry()

# One line per module, registered in this order: the order of the schema, the docs and the
# generic tests.
_MODULES = (
    "dense",
    "conv",
    "pool",
    "flatten",
    "dropout",
    "batchnorm",
    "lrn",
    "globalpool",
)
for _module in _MODULES:
    LAYERS.register(*importlib.import_module(f"{__name__}.{_module}").KINDS)

__all__ = [
    "LAYERS",
    "DocCase",
    "Layer",
    "LayerKind",
    "Registry",
    "Shape",
    "ShapeError",
    "SpecModel",
]
