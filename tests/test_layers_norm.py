"""flatten, dropout and batchnorm: gradients, forward references, ONNX parity, errors."""

from __future__ import annotations

import numpy as np
import pytest
from layer_checks import assert_parity, check_gradients, make, normal
from onnx import helper
from pydantic import ValidationError

from nnspec.layers import ShapeError
from nnspec.layers import dropout as dropout_mod
from nnspec.layers.batchnorm import BatchNorm, BatchNormSpec
from nnspec.layers.dropout import Dropout, DropoutSpec
from nnspec.layers.flatten import Flatten, FlattenSpec
from nnspec.onnxio.graph import GraphBuilder

# --- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("in_shape", [(None, 2, 3, 4), (None, 6)])
def test_flatten_gradient(in_shape):
    layer = make(Flatten, FlattenSpec(kind="flatten"), in_shape)
    x = normal(3, *in_shape[1:])
    assert layer.forward(x).shape == (3, int(np.prod(in_shape[1:])))
    check_gradients(layer, x)


@pytest.mark.parametrize("in_shape", [(None, 7), (None, 2, 3, 3)])
def test_dropout_gradient(in_shape):
    layer = make(Dropout, DropoutSpec(kind="dropout", rate=0.4), in_shape)
    check_gradients(layer, normal(4, *in_shape[1:]))


@pytest.mark.parametrize("in_shape", [(None, 4), (None, 3, 2, 3)])
def test_batchnorm_training_gradient(in_shape):
    layer = make(BatchNorm, BatchNormSpec(kind="batchnorm"), in_shape)
    layer.params["scale"][...] = normal(in_shape[1], seed=2)
    layer.params["bias"][...] = normal(in_shape[1], seed=3)
    check_gradients(layer, normal(5, *in_shape[1:], loc=1.0, scale=2.0))


@pytest.mark.parametrize("in_shape", [(None, 4), (None, 3, 2, 3)])
def test_batchnorm_frozen_gradient_uses_running_stats(in_shape):
    layer = make(BatchNorm, BatchNormSpec(kind="batchnorm", trainable=False), in_shape)
    c = in_shape[1]
    layer.params["scale"][...] = normal(c, seed=2)
    layer.state["running_mean"][...] = normal(c, seed=4)
    layer.state["running_var"][...] = normal(c, seed=5) ** 2 + 0.5
    before = {k: v.copy() for k, v in layer.state.items()}
    grads = check_gradients(layer, normal(5, *in_shape[1:]), params=False)
    assert all(not g.any() for g in grads.values())  # a frozen layer skips its gradients
    for k in before:
        np.testing.assert_array_equal(layer.state[k], before[k])
    # Frozen in training == inference: the affine map of the running statistics.
    x = normal(2, *in_shape[1:], seed=9)
    np.testing.assert_array_equal(layer.forward(x, training=True), layer.forward(x))


# --- forward references ------------------------------------------------------------------


@pytest.mark.parametrize("in_shape", [(None, 4), (None, 3, 4, 5)])
def test_batchnorm_training_statistics_and_running_update(in_shape):
    spec = BatchNormSpec(kind="batchnorm", momentum=0.8)
    layer = make(BatchNorm, spec, in_shape)
    axes = (0,) if len(in_shape) == 2 else (0, 2, 3)
    x = normal(16, *in_shape[1:], loc=3.0, scale=2.0)
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=axes), 1, rtol=1e-3)  # var / (var + eps)
    n = x.size // in_shape[1]
    want_mean = 0.8 * 0 + 0.2 * x.mean(axis=axes)
    want_var = 0.8 * 1 + 0.2 * x.var(axis=axes, ddof=1)  # unbiased, as PyTorch
    assert n == x.size / in_shape[1]
    np.testing.assert_allclose(layer.state["running_mean"], want_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.state["running_var"], want_var, rtol=1e-12)
    # Inference uses the running statistics and leaves them alone.
    before = {k: v.copy() for k, v in layer.state.items()}
    rm, rv = (layer._b(before[k]) for k in ("running_mean", "running_var"))
    np.testing.assert_allclose(layer.forward(x), (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-12)
    for k in before:
        np.testing.assert_array_equal(layer.state[k], before[k])


def test_batchnorm_keeps_float32_and_state_arrays():
    layer = make(BatchNorm, BatchNormSpec(kind="batchnorm"), (None, 3, 2, 2), np.float32)
    arrays = dict(layer.state)
    y = layer.forward(normal(4, 3, 2, 2).astype(np.float32), training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    for k, v in layer.state.items():
        assert v is arrays[k] and v.dtype == np.float32  # updated in place


def test_batchnorm_single_value_per_channel_leaves_state():
    layer = make(BatchNorm, BatchNormSpec(kind="batchnorm"), (None, 3))
    y = layer.forward(normal(1, 3), training=True)
    np.testing.assert_array_equal(y, 0)
    np.testing.assert_array_equal(layer.state["running_var"], 1)


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


# --- ONNX parity -------------------------------------------------------------------------


@pytest.mark.parametrize("in_shape", [(None, 2, 3, 4), (None, 3, 5), (None, 6)])
def test_flatten_parity(in_shape):
    model = assert_parity(FlattenSpec(kind="flatten"), in_shape, 18)
    [node] = model.graph.node
    assert node.op_type == "Flatten" and node.name == "under_test/Flatten"
    assert helper.get_attribute_value(node.attribute[0]) == 1


def test_dropout_adds_no_node():
    layer = make(Dropout, DropoutSpec(kind="dropout"), (None, 4), np.float32)
    g = GraphBuilder(np.float32)
    assert dropout_mod.lower_dropout(layer, g, "input") == "input"
    assert g.nodes == [] and g.tensors == []


def randomize_batchnorm(layer):
    c = layer.params["scale"].shape[0]
    layer.params["scale"][...] = normal(c, seed=11)
    layer.params["bias"][...] = normal(c, seed=12)
    layer.state["running_mean"][...] = normal(c, seed=13)
    layer.state["running_var"][...] = normal(c, seed=14) ** 2 + 0.1


@pytest.mark.parametrize("opset", [13, 18, 22])
@pytest.mark.parametrize("in_shape", [(None, 4), (None, 3, 2, 5)])
def test_batchnorm_parity(opset, in_shape):
    spec = BatchNormSpec(kind="batchnorm", epsilon=1e-3)
    model = assert_parity(spec, in_shape, opset, setup=randomize_batchnorm)
    [node] = model.graph.node
    assert node.op_type == "BatchNormalization" and len(node.output) == 1
    assert list(node.input[1:]) == [
        "under_test.scale",
        "under_test.bias",
        "under_test.running_mean",
        "under_test.running_var",
    ]


# --- errors ------------------------------------------------------------------------------


def test_shape_errors():
    with pytest.raises(ShapeError, match="expected .*got a 2-D sample shape"):
        BatchNormSpec(kind="batchnorm").output_shape((None, 4, 5))
    with pytest.raises(ShapeError):
        FlattenSpec(kind="flatten").output_shape((None,))
    assert BatchNormSpec(kind="batchnorm").output_shape((None, 4)) == (None, 4)
    assert BatchNormSpec(kind="batchnorm").param_count((None, 3, 8, 8)) == 12
    assert FlattenSpec(kind="flatten").output_shape((None, 2, 3, 4)) == (None, 24)
    assert DropoutSpec(kind="dropout").output_shape((None, 2, 3)) == (None, 2, 3)


@pytest.mark.parametrize(
    "cls,fields",
    [
        (DropoutSpec, {"kind": "dropout", "rate": 1.0}),
        (DropoutSpec, {"kind": "dropout", "rate": -0.1}),
        (BatchNormSpec, {"kind": "batchnorm", "epsilon": 0}),
        (BatchNormSpec, {"kind": "batchnorm", "momentum": 1.0}),
        (FlattenSpec, {}),
        (FlattenSpec, {"kind": "flatten", "axis": 2}),
    ],
)
def test_validation_errors(cls, fields):
    with pytest.raises(ValidationError):
        cls(**fields)
