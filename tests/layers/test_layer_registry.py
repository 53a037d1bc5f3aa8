"""What every registered layer kind's record promises, checked kind by kind from the registry:
its examples and doc cases, the array layout that init.from reads, whether it takes images, and
that the memory estimate covers what a training forward pass keeps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnspec.layers import LAYERS, ShapeError
from nnspec.spec.memory import _ACTIVATION_COPIES

KINDS = list(LAYERS)


def built_examples(kind: str, dtype=np.float64):
    """(spec, in_shape, layer) for each of the kind's examples."""
    record = LAYERS[kind]
    for spec, in_shape in record.examples():
        yield spec, in_shape, record.layer(spec, "x", in_shape, np.random.default_rng(0), dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_record_names_its_kind_examples_and_doc_cases(kind):
    record = LAYERS[kind]
    assert record.name == kind
    examples = record.examples()
    assert examples and all(spec.kind == kind for spec, _ in examples)
    assert record.docs, f"{kind}: no doc cases for docs/onnx.md"
    for case in record.docs:
        assert case.shown.startswith(f"{{kind: {kind}, name: x"), case.shown
        assert f"`{kind}`" in case.construct and case.note.strip(), case


@pytest.mark.parametrize("kind", KINDS)
def test_input_axes_cover_every_array_the_layer_keeps(kind):
    """init.from tells a new head from a mismatched input by these axes: every param and state
    array must be listed, with axes that exist."""
    for spec, _, layer in built_examples(kind):
        arrays = {**layer.params, **layer.state}
        assert arrays.keys() <= LAYERS[kind].input_axes.keys(), (spec, sorted(arrays))
        for name, a in arrays.items():
            assert all(0 <= axis < a.ndim for axis in LAYERS[kind].input_axes[name]), name


@pytest.mark.parametrize("kind", KINDS)
def test_takes_images_exactly_when_flat_input_is_refused(kind):
    """A kind that takes images makes a built-in image dataset arrive as images; one that also
    reads flat features must not claim it (dense, batchnorm)."""
    spec = LAYERS[kind].examples()[0][0]
    try:
        spec.output_shape((None, 12))
        refuses_flat = False
    except ShapeError:
        refuses_flat = True
    assert LAYERS[kind].takes_images == refuses_flat


@pytest.mark.parametrize("kind", KINDS)
def test_memory_estimate_covers_what_training_keeps(kind):
    """Arrays that a training forward pass leaves on the layer (beside its parameters and its
    input, which the layer below counts) fit in what spec/memory.py counts for it:
    activation copies of the output plus the kind's ``cache_elements``, per sample."""
    batch = 5
    for spec, in_shape, layer in built_examples(kind):
        x = np.random.default_rng(1).normal(size=(batch, *in_shape[1:]))
        layer.forward(x, training=True)
        own = [*layer.params.values(), *layer.grads.values(), *layer.state.values()]
        kept = sum(
            v.size
            for v in vars(layer).values()
            if isinstance(v, np.ndarray)
            and v.size >= batch  # per-sample arrays, not per-channel constants
            and not np.shares_memory(v, x)
            and not any(v is a for a in own)
        )
        cache = LAYERS[kind].cache_elements(spec, in_shape)
        assert isinstance(cache, int) and cache >= 0
        out = math.prod(spec.output_shape(in_shape)[1:])
        assert kept <= batch * (_ACTIVATION_COPIES * out + cache), (spec, kept)
