"""batchnorm: gradients (training and frozen), running statistics, ONNX parity, errors."""

from __future__ import annotations

import numpy as np
import pytest
from layer_checks import assert_parity, check_gradients, make, normal
from pydantic import ValidationError

from nnspec.layers import ShapeError
from nnspec.layers.batchnorm import BatchNorm, BatchNormSpec


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


def test_batchnorm_shapes():
    with pytest.raises(ShapeError, match="expected .*got a 2-D sample shape"):
        BatchNormSpec(kind="batchnorm").output_shape((None, 4, 5))
    assert BatchNormSpec(kind="batchnorm").output_shape((None, 4)) == (None, 4)
    assert BatchNormSpec(kind="batchnorm").param_count((None, 3, 8, 8)) == 12


@pytest.mark.parametrize("fields", [{"epsilon": 0}, {"momentum": 1.0}])
def test_batchnorm_validation_errors(fields):
    with pytest.raises(ValidationError):
        BatchNormSpec(kind="batchnorm", **fields)
