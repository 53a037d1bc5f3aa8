"""flatten: gradient, ONNX parity, shapes and spec errors."""

from __future__ import annotations

import numpy as np
import pytest
from layer_checks import assert_parity, check_gradients, make, normal
from onnx import helper
from pydantic import ValidationError

from nnspec.layers import ShapeError
from nnspec.layers.flatten import Flatten, FlattenSpec


@pytest.mark.parametrize("in_shape", [(None, 2, 3, 4), (None, 6)])
def test_flatten_gradient(in_shape):
    layer = make(Flatten, FlattenSpec(kind="flatten"), in_shape)
    x = normal(3, *in_shape[1:])
    assert layer.forward(x).shape == (3, int(np.prod(in_shape[1:])))
    check_gradients(layer, x)


@pytest.mark.parametrize("in_shape", [(None, 2, 3, 4), (None, 3, 5), (None, 6)])
def test_flatten_parity(in_shape):
    model = assert_parity(FlattenSpec(kind="flatten"), in_shape, 18)
    [node] = model.graph.node
    assert node.op_type == "Flatten" and node.name == "under_test/Flatten"
    assert helper.get_attribute_value(node.attribute[0]) == 1


def test_flatten_shapes():
    with pytest.raises(ShapeError):
        FlattenSpec(kind="flatten").output_shape((None,))
    assert FlattenSpec(kind="flatten").output_shape((None, 2, 3, 4)) == (None, 24)


@pytest.mark.parametrize("fields", [{}, {"kind": "flatten", "axis": 2}])
def test_flatten_validation_errors(fields):
    with pytest.raises(ValidationError):
        FlattenSpec(**fields)
