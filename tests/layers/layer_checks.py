"""Checks of one layer on its own, shared by the per-kind test files: float64 gradients against
central differences, and ONNX parity of the layer alone in a graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from gradient_checks import central_differences, rel_error
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from nnspec.layers import LAYERS
from nnspec.onnxio.graph import GraphBuilder

RTOL, ATOL = 1e-4, 1e-5


def make(cls, spec, in_shape, dtype=np.float64, seed=0):
    return cls(spec, "under_test", in_shape, np.random.default_rng(seed), dtype)


def forward(layer, x, training):
    """A forward pass that draws the same random numbers every time (a layer that draws any
    keeps its Generator as ``rng``)."""
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


def assert_parity(spec, in_shape, opset, setup=None) -> onnx.ModelProto:
    """The layer of ``spec`` (float32) alone in an ONNX graph: strict shape inference gives its
    output shape, and onnxruntime (and onnx's ReferenceEvaluator, where it is right) gives its
    NumPy forward pass, for batches of 1 and 3. ``setup(layer)`` may set its arrays first."""
    kind = LAYERS[spec.kind]
    layer = make(kind.layer, spec, in_shape, np.float32)
    lower = kind.lower
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
