"""dropout: gradient with a fixed mask, mask statistics and seeding, no ONNX node, errors."""

from __future__ import annotations

import numpy as np
import pytest
from layer_checks import check_gradients, make, normal
from pydantic import ValidationError

from nnspec.layers import dropout as dropout_mod
from nnspec.layers.dropout import Dropout, DropoutSpec
from nnspec.onnxio.graph import GraphBuilder


@pytest.mark.parametrize("in_shape", [(None, 7), (None, 2, 3, 3)])
def test_dropout_gradient(in_shape):
    layer = make(Dropout, DropoutSpec(kind="dropout", rate=0.4), in_shape)
    check_gradients(layer, normal(4, *in_shape[1:]))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_training_statistics(rate):
    layer = make(Dropout, DropoutSpec(kind="dropout", rate=rate), (None, 200, 100))
    x = normal(5, 200, 100, loc=5.0)  # no exact zeros in x
    y = layer.forward(x, training=True)
    dropped = y == 0
    assert abs(dropped.mean() - rate) < 0.01
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - rate), rtol=1e-12)
    assert layer.forward(x) is x  # identity at inference


def test_dropout_same_seed_same_mask_and_dtype():
    spec = DropoutSpec(kind="dropout")
    x = np.ones((4, 10), np.float32)
    a = make(Dropout, spec, (None, 10), np.float32, seed=5).forward(x, training=True)
    b = make(Dropout, spec, (None, 10), np.float32, seed=5).forward(x, training=True)
    c = make(Dropout, spec, (None, 10), np.float32, seed=6).forward(x, training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32
    assert set(np.unique(a)) <= {0.0, 2.0}


def test_dropout_rate_zero_is_identity_in_training():
    layer = make(Dropout, DropoutSpec(kind="dropout", rate=0), (None, 3))
    x = normal(2, 3)
    assert layer.forward(x, training=True) is x
    assert layer.backward(x) is x


def test_dropout_adds_no_node():
    layer = make(Dropout, DropoutSpec(kind="dropout"), (None, 4), np.float32)
    g = GraphBuilder(np.float32)
    assert dropout_mod.lower_dropout(layer, g, "input") == "input"
    assert g.nodes == [] and g.tensors == []


def test_dropout_keeps_any_shape():
    assert DropoutSpec(kind="dropout").output_shape((None, 2, 3)) == (None, 2, 3)


@pytest.mark.parametrize("rate", [1.0, -0.1])
def test_dropout_validation_errors(rate):
    with pytest.raises(ValidationError):
        DropoutSpec(kind="dropout", rate=rate)
