"""flatten, dropout, batchnorm and lrn: gradients, forward references, ONNX parity, errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from pydantic import ValidationError
from test_gradients import central_differences, rel_error

from nnspec.layers import ShapeError
from nnspec.layers import batchnorm as bn_mod
from nnspec.layers import dropout as dropout_mod
from nnspec.layers import flatten as flatten_mod
from nnspec.layers import lrn as lrn_mod
from nnspec.layers.batchnorm import BatchNorm, BatchNormSpec
from nnspec.layers.dropout import Dropout, DropoutSpec
from nnspec.layers.flatten import Flatten, FlattenSpec
from nnspec.layers.lrn import LRN, LRNSpec
from nnspec.onnxio.graph import GraphBuilder

RTOL, ATOL = 1e-4, 1e-5
MODULES = {
    "flatten": (flatten_mod, Flatten, flatten_mod.lower_flatten),
    "dropout": (dropout_mod, Dropout, dropout_mod.lower_dropout),
    "batchnorm": (bn_mod, BatchNorm, bn_mod.lower_batchnorm),
    "lrn": (lrn_mod, LRN, lrn_mod.lower_lrn),
}


def make(cls, spec, in_shape, dtype=np.float64, seed=0):
    return cls(spec, "under_test", in_shape, np.random.default_rng(seed), dtype)


def forward(layer, x, training):
    """A forward pass that draws the same dropout mask every time."""
    if hasattr(layer, "rng"):
        layer.rng = np.random.default_rng(0)
    return layer.forward(x, training=training)


def check_gradients(layer, x, training=True, params=True):
    """Half squared error against a random target: analytic vs central differences."""
    target = np.random.default_rng(7).normal(size=forward(layer, x, training).shape)
    dx = layer.backward(forward(layer, x, training) - target)
    analytic = {k: g.copy() for k, g in layer.grads.items()}

    def loss():
        return 0.5 * float(np.sum((forward(layer, x, training) - target) ** 2))

    if params:
        for name, p in layer.params.items():
            err = rel_error(analytic[name], central_differences(loss, p))
            assert err < 1e-6, (name, err)
    err = rel_error(dx, central_differences(loss, x))
    assert err < 1e-6, ("input", err)
    return analytic


def normal(*shape, seed=1, loc=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(loc, scale, size=shape)


# --- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_examples_gradients(kind):
    """What the registry's generic gradient test will run, with the rng reset."""
    module, cls, _ = MODULES[kind]
    for spec, in_shape in module.examples():
        layer = make(cls, spec, in_shape, seed=1)
        check_gradients(layer, normal(5, *in_shape[1:]))


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


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_lrn_gradient(size):
    spec = LRNSpec(kind="lrn", size=size, alpha=0.7, beta=0.75, bias=1.5)
    layer = make(LRN, spec, (None, 5, 2, 3))
    check_gradients(layer, normal(3, 5, 2, 3))


# --- forward references ------------------------------------------------------------------


def lrn_reference(x, size, alpha, beta, bias):
    """ONNX's LRN definition, one element at a time."""
    n_, c_, h_, w_ = x.shape
    y = np.empty_like(x)
    for n in range(n_):
        for c in range(c_):
            lo = max(0, c - (size - 1) // 2)
            hi = min(c_ - 1, c + int(np.ceil((size - 1) / 2)))
            for h in range(h_):
                for w in range(w_):
                    s = sum(x[n, i, h, w] ** 2 for i in range(lo, hi + 1))
                    y[n, c, h, w] = x[n, c, h, w] / (bias + alpha / size * s) ** beta
    return y


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 9])
def test_lrn_matches_loop_reference(size):
    x = normal(2, 6, 3, 2, scale=3.0)
    spec = LRNSpec(kind="lrn", size=size, alpha=0.3, beta=0.75, bias=2.0)
    got = make(LRN, spec, (None, 6, 3, 2)).forward(x)
    np.testing.assert_allclose(got, lrn_reference(x, size, 0.3, 0.75, 2.0), rtol=1e-12)


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


def one_layer_model(layer, lower, in_shape, out_shape, opset) -> onnx.ModelProto:
    g = GraphBuilder(np.float32)
    out = lower(layer, g, "input")
    graph = helper.make_graph(
        g.nodes,
        "t",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *in_shape[1:]])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", *out_shape[1:]])],
        g.initializers(),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _reference_agrees(node, x, want, opset, inits=None) -> bool:
    """Whether onnx's ReferenceEvaluator computes ``node`` right on a probe where it can fail."""
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)],
        [onnx.numpy_helper.from_array(np.float32(v), k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    got = ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})[0]
    return np.allclose(got, want, rtol=1e-5)


# Known ReferenceEvaluator bugs, probed so the comparison comes back once onnx fixes them:
# LRN loops over the batch axis instead of channels (onnx/onnx#7805, fixed by #8331);
# BatchNormalization before opset 14 picks training mode from the schema's default momentum
# and normalizes with statistics blended with the batch's (onnx/onnx#8442).
LRN_PROBE = helper.make_node("LRN", ["x"], ["y"], size=3, alpha=3.0, beta=1.0, bias=1.0)
BN_PROBE = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=0.0)
REFERENCE_LRN_OK = _reference_agrees(LRN_PROBE, np.ones((1, 2, 1, 1)), 1 / 3, 13)
REFERENCE_BN9_OK = _reference_agrees(
    BN_PROBE, np.array([[0.0], [4.0]]), [[0.0], [4.0]], 13, {"s": [1], "b": [0], "m": [0], "v": [1]}
)


def reference_ok(model: onnx.ModelProto) -> bool:
    ops = {n.op_type for n in model.graph.node}
    old_bn = "BatchNormalization" in ops and model.opset_import[0].version < 14
    return (REFERENCE_LRN_OK or "LRN" not in ops) and (REFERENCE_BN9_OK or not old_bn)


def assert_parity(kind, spec, in_shape, opset, setup=None):
    _, cls, lower = MODULES[kind]
    layer = make(cls, spec, in_shape, np.float32)
    if setup:
        setup(layer)
    out_shape = spec.output_shape(in_shape)
    model = one_layer_model(layer, lower, in_shape, out_shape, opset)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", *out_shape[1:]]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = ReferenceEvaluator(model)
    for batch in (1, 3):
        x = normal(batch, *in_shape[1:], seed=batch, loc=0.5, scale=2.0).astype(np.float32)
        want = layer.forward(x)
        assert want.dtype == np.float32
        runs = [sess.run(None, {"input": x})[0]]
        if reference_ok(model):
            runs.append(ref.run(None, {"input": x})[0])
        for got in runs:
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    return model


@pytest.mark.parametrize("in_shape", [(None, 2, 3, 4), (None, 3, 5), (None, 6)])
def test_flatten_parity(in_shape):
    model = assert_parity("flatten", FlattenSpec(kind="flatten"), in_shape, 18)
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
    model = assert_parity("batchnorm", spec, in_shape, opset, setup=randomize_batchnorm)
    [node] = model.graph.node
    assert node.op_type == "BatchNormalization" and len(node.output) == 1
    assert list(node.input[1:]) == [
        "under_test.scale",
        "under_test.bias",
        "under_test.running_mean",
        "under_test.running_var",
    ]


@pytest.mark.parametrize("opset", [13, 18, 22])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_lrn_parity(opset, size):
    spec = LRNSpec(kind="lrn", size=size, alpha=0.5, beta=0.75, bias=2.0)
    nodes = assert_parity("lrn", spec, (None, 5, 3, 2), opset).graph.node
    if size % 2:
        [node] = nodes
        assert node.op_type == "LRN" and node.name == "under_test/LRN"
    else:  # onnxruntime's LRN takes odd sizes only: the definition, spelled out
        assert [n.op_type for n in nodes] == ["Mul", "Conv", "Mul", "Add", "Pow", "Div"]


def test_lrn_parity_with_defaults():
    assert_parity("lrn", LRNSpec(kind="lrn", size=5), (None, 7, 4, 4), 18)


# --- errors ------------------------------------------------------------------------------


def test_shape_errors():
    with pytest.raises(ShapeError, match=r"expected \(batch, channels, height, width\)"):
        LRNSpec(kind="lrn", size=3).output_shape((None, 10))
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
        (LRNSpec, {"kind": "lrn", "size": 0}),
        (LRNSpec, {"kind": "lrn"}),
        (BatchNormSpec, {"kind": "batchnorm", "epsilon": 0}),
        (BatchNormSpec, {"kind": "batchnorm", "momentum": 1.0}),
        (FlattenSpec, {}),
        (FlattenSpec, {"kind": "flatten", "axis": 2}),
    ],
)
def test_validation_errors(cls, fields):
    with pytest.raises(ValidationError):
        cls(**fields)


def test_every_field_is_described():
    for cls in (FlattenSpec, DropoutSpec, BatchNormSpec, LRNSpec):
        for name, field in cls.model_fields.items():
            assert field.description, (cls.__name__, name)
