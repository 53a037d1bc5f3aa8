"""conv2d, maxpool2d and avgpool2d: gradients, forward against loop references and ONNX
runtimes, shapes and their errors, spec validation."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from gradient_checks import central_differences, half_squared_error, rel_error
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from pydantic import ValidationError

from nnspec.layers import LAYERS
from nnspec.layers.base import ShapeError
from nnspec.layers.conv import Conv2d, Conv2dSpec, examples, im2col_elements
from nnspec.layers.pool import AvgPool2dSpec, MaxPool2dSpec
from nnspec.onnxio.graph import GraphBuilder

# The kinds whose loop references are written out below; their faces come from the registry.
KINDS = ("conv2d", "maxpool2d", "avgpool2d")
CASES = [(kind, spec, shape) for kind in KINDS for spec, shape in LAYERS[kind].examples()]
IDS = [f"{kind}-{i}" for i, (kind, _, _) in enumerate(CASES)]
RTOL, ATOL = 1e-4, 1e-5


def build(kind, spec, in_shape, dtype=np.float64, seed=1):
    return LAYERS[kind].layer(spec, "under_test", in_shape, np.random.default_rng(seed), dtype)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("kind,spec,in_shape", CASES, ids=IDS)
def test_gradients_match_central_differences(kind, spec, in_shape):
    rng = np.random.default_rng(0)
    layer = build(kind, spec, in_shape)
    x = rng.normal(size=(3, *in_shape[1:]))
    target = rng.normal(size=(3, *spec.output_shape(in_shape)[1:]))
    grads_before = dict(layer.grads)
    dx = layer.backward(layer.forward(x, training=True) - target)
    assert all(layer.grads[k] is g for k, g in grads_before.items())  # filled in place
    loss = partial(half_squared_error, layer, x, target)
    for name, p in layer.params.items():
        assert rel_error(layer.grads[name].copy(), central_differences(loss, p)) < 1e-6, name
    assert rel_error(dx, central_differences(loss, x)) < 1e-6


def test_frozen_conv_skips_parameter_gradients_but_not_the_input_gradient():
    spec, in_shape = examples()[1]
    layer = build("conv2d", spec, in_shape)
    frozen = build("conv2d", spec.model_copy(update={"trainable": False}), in_shape)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *in_shape[1:]))
    da = rng.normal(size=(2, *spec.output_shape(in_shape)[1:]))
    layer.forward(x, training=True)
    frozen.forward(x, training=True)
    np.testing.assert_array_equal(frozen.backward(da), layer.backward(da))
    assert all(not g.any() for g in frozen.grads.values())
    assert all(g.any() for g in layer.grads.values())


def test_max_pool_routes_ties_to_the_first_maximum_and_accumulates_overlaps():
    layer = build("maxpool2d", MaxPool2dSpec(kind="maxpool2d", kernel_size=2), (None, 1, 2, 4))
    layer.forward(np.zeros((1, 1, 2, 4)), training=True)
    dx = layer.backward(np.ones((1, 1, 1, 2)))
    np.testing.assert_array_equal(dx[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0]])

    spec = MaxPool2dSpec(kind="maxpool2d", kernel_size=3, stride=2)  # windows share column 2
    layer = build("maxpool2d", spec, (None, 1, 3, 5))
    x = np.zeros((1, 1, 3, 5))
    x[0, 0, 1, 2] = 5.0
    np.testing.assert_array_equal(layer.forward(x, training=True), [[[[5.0, 5.0]]]])
    dx = layer.backward(np.array([[[[2.0, 3.0]]]]))
    assert dx[0, 0, 1, 2] == 5.0 and dx.sum() == 5.0


def test_padding_never_wins_a_max_and_is_not_counted_in_a_mean():
    x = -np.ones((1, 1, 3, 3))
    for kind, spec_class in (("maxpool2d", MaxPool2dSpec), ("avgpool2d", AvgPool2dSpec)):
        spec = spec_class(kind=kind, kernel_size=3, stride=1, padding=1)
        np.testing.assert_array_equal(build(kind, spec, x.shape).forward(x), x)


# ----------------------------------------------------------- forward against references


def reference_pads(spec, h, w):
    """(top, left, bottom, right) written out independently of nnspec.layers.window."""
    if spec.padding == "valid":
        return (0, 0, 0, 0)
    if spec.padding != "same":
        ph, pw = pair(spec.padding)
        return (ph, pw, ph, pw)
    kernel, dilation = pair(spec.kernel_size), pair(getattr(spec, "dilation", 1))
    stride = pair(spec.stride if spec.stride is not None else spec.kernel_size)
    pads = []
    for n, k, d, s in zip((h, w), kernel, dilation, stride, strict=True):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def reference_forward(kind, layer, spec, x):
    """One output pixel at a time, straight from the definitions (float64)."""
    n, c, h, w = x.shape
    top, left, bottom, right = reference_pads(spec, h, w)
    kh, kw = pair(spec.kernel_size)
    dh, dw = pair(getattr(spec, "dilation", 1))
    sh, sw = pair(spec.stride if spec.stride is not None else spec.kernel_size)
    fill = -np.inf if kind == "maxpool2d" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    real = np.pad(np.ones((h, w)), ((top, bottom), (left, right)))
    oh = (xp.shape[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[3] - (kw - 1) * dw - 1) // sw + 1
    if kind == "conv2d":
        wt, groups = layer.params["weight"], spec.groups
        out = np.zeros((n, spec.filters, oh, ow))
        for f in range(spec.filters):
            g = f // (spec.filters // groups)
            chans = slice(g * (c // groups), (g + 1) * (c // groups))
            for i in range(oh):
                for j in range(ow):
                    patch = xp[:, chans, i * sh : i * sh + (kh - 1) * dh + 1 : dh]
                    patch = patch[..., j * sw : j * sw + (kw - 1) * dw + 1 : dw]
                    out[:, f, i, j] = (patch * wt[f]).sum(axis=(1, 2, 3))
        out += layer.params.get("bias", np.zeros(spec.filters))[:, None, None]
        return layer.act.forward(out)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            if kind == "maxpool2d":
                out[:, :, i, j] = patch.max(axis=(2, 3))
            else:
                out[:, :, i, j] = patch.sum(axis=(2, 3)) / real[i * sh :, j * sw :][:kh, :kw].sum()
    return out


@pytest.mark.parametrize("kind,spec,in_shape", CASES, ids=IDS)
def test_forward_matches_a_loop_reference(kind, spec, in_shape):
    layer = build(kind, spec, in_shape)
    if "bias" in layer.params:
        layer.params["bias"][:] = np.random.default_rng(3).normal(size=layer.params["bias"].shape)
    x = np.random.default_rng(2).normal(size=(3, *in_shape[1:]))
    np.testing.assert_allclose(layer.forward(x), reference_forward(kind, layer, spec, x), 1e-12)


def one_layer_model(kind, layer, in_shape, out_shape, opset) -> onnx.ModelProto:
    g = GraphBuilder(np.float32)
    g.unique("input")
    y = LAYERS[kind].lower(layer, g, "input")
    g.nodes.append(helper.make_node("Identity", [y], ["output"], name="output"))
    graph = helper.make_graph(
        g.nodes,
        kind,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *in_shape[1:]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", *out_shape[1:]])],
        initializer=g.initializers(),
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets)
    )
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", *out_shape[1:]]
    return model


def run_onnx(model, x) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [sess.run(None, {"input": x})[0], ReferenceEvaluator(model).run(None, {"input": x})[0]]


@pytest.mark.parametrize("opset", [13, 18, 22])
@pytest.mark.parametrize("kind,spec,in_shape", CASES, ids=IDS)
def test_onnx_parity(kind, spec, in_shape, opset):
    layer = build(kind, spec, in_shape, np.float32, seed=0)
    if "bias" in layer.params:
        layer.params["bias"][:] = np.random.default_rng(3).normal(size=layer.params["bias"].shape)
    out_shape = spec.output_shape(in_shape)
    model = one_layer_model(kind, layer, in_shape, out_shape, opset)
    if opset == 18:
        assert model.ir_version == 8
    for batch in (1, 3):
        x = np.random.default_rng(batch).normal(size=(batch, *in_shape[1:])).astype(np.float32)
        want = layer.forward(x)
        for got in run_onnx(model, x):
            assert got.shape == want.shape == (batch, *out_shape[1:])
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# onnxruntime refuses auto_pad together with dilation.
SAME = [c for c in CASES if c[1].padding == "same" and getattr(c[1], "dilation", 1) == 1]


@pytest.mark.parametrize(
    "kind,spec,in_shape", SAME, ids=[f"{c[0]}-{i}" for i, c in enumerate(SAME)]
)
def test_same_padding_agrees_with_onnx_same_upper(kind, spec, in_shape):
    """Our explicit 'same' pads against onnxruntime's own auto_pad=SAME_UPPER arithmetic."""
    layer = build(kind, spec, in_shape, np.float32)
    model = one_layer_model(kind, layer, in_shape, spec.output_shape(in_shape), 18)
    (node,) = [n for n in model.graph.node if n.op_type in ("Conv", "MaxPool", "AveragePool")]
    del node.attribute[[a.name for a in node.attribute].index("pads")]
    node.attribute.append(helper.make_attribute("auto_pad", "SAME_UPPER"))
    x = np.random.default_rng(0).normal(size=(2, *in_shape[1:])).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], layer.forward(x), RTOL, ATOL)


# ----------------------------------------------------------------------------- shapes


def conv(**fields):
    return Conv2dSpec(kind="conv2d", **fields)


def maxpool(**fields):
    return MaxPool2dSpec(kind="maxpool2d", **fields)


def test_lenet_shapes():
    shape = (None, 1, 28, 28)
    stack = [conv(filters=6, kernel_size=5), maxpool(kernel_size=2)] * 2
    sizes = []
    for spec in stack:
        shape = spec.output_shape(shape)
        sizes.append(shape[1:])
    assert sizes == [(6, 24, 24), (6, 12, 12), (6, 8, 8), (6, 4, 4)]


def test_alexnet_shapes_and_grouped_param_count():
    conv1 = conv(filters=96, kernel_size=11, stride=4, activation="relu")
    assert conv1.output_shape((None, 3, 227, 227)) == (None, 96, 55, 55)
    assert conv1.param_count((None, 3, 227, 227)) == 96 * 3 * 121 + 96
    pool1 = maxpool(kernel_size=3, stride=2)
    assert pool1.output_shape((None, 96, 55, 55)) == (None, 96, 27, 27)
    conv2 = conv(filters=256, kernel_size=5, padding=2, groups=2)
    assert conv2.output_shape((None, 96, 27, 27)) == (None, 256, 27, 27)
    assert conv2.param_count((None, 96, 27, 27)) == 256 * 48 * 25 + 256 == 307_456
    layer = Conv2d(conv2, "conv2", (None, 96, 27, 27), np.random.default_rng(0), np.float32)
    assert layer.params["weight"].shape == (256, 48, 5, 5)
    assert sum(p.size for p in layer.params.values()) == 307_456


@pytest.mark.parametrize("size", [1, 5, 6, 7, 28])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
def test_same_padding_gives_ceil_of_input_over_stride(size, stride, kernel):
    want = math.ceil(size / stride)
    assert conv(filters=2, kernel_size=kernel, stride=stride, padding="same").output_shape(
        (None, 3, size, size + 1)
    ) == (None, 2, want, math.ceil((size + 1) / stride))
    assert maxpool(kernel_size=kernel, stride=stride, padding="same").output_shape(
        (None, 3, size, size)
    ) == (None, 3, want, want)


@pytest.mark.parametrize("kind,spec,in_shape", CASES, ids=IDS)
def test_param_count_matches_the_layer(kind, spec, in_shape):
    layer = build(kind, spec, in_shape)
    assert spec.param_count(in_shape) == sum(p.size for p in layer.params.values())


@pytest.mark.parametrize(
    "spec,shape,fragments",
    [
        (maxpool(kernel_size=2), (None, 16, 1, 1), ["input 16×1×1", "2×2 window"]),
        (conv(filters=4, kernel_size=5), (None, 3, 4, 9), ["input 3×4×9", "5×5 kernel"]),
        (conv(filters=4, kernel_size=3, dilation=2), (None, 3, 4, 9), ["dilated to 5×5"]),
        (
            conv(filters=4, kernel_size=5, padding=[0, 1]),
            (None, 3, 4, 4),
            ["input 3×4×4 (padded to 4×6)", "5×5 kernel"],
        ),
        (
            maxpool(kernel_size=2),
            (None, 64),
            ["expected an image input (batch, channels, height, width)", "flat input (batch, 64)"],
        ),
        (conv(filters=4, kernel_size=1), (None, 64), ["give input: {shape: [C, H, W]}"]),
        (conv(filters=4, kernel_size=1), (None, 2, 3), ["2-D sample shape 2×3"]),
        (conv(filters=4, kernel_size=1, groups=2), (None, 3, 5, 5), ["groups 2", "3 input"]),
        (conv(filters=3, kernel_size=1, groups=2), (None, 4, 5, 5), ["groups 2", "3 filters"]),
        (maxpool(kernel_size=2, padding=2), (None, 1, 8, 8), ["padding 2×2", "2×2 pooling"]),
        (
            AvgPool2dSpec(kind="avgpool2d", kernel_size=[3, 2], padding=[1, 2]),
            (None, 1, 8, 8),
            ["padding 1×2 must be smaller than the 3×2"],
        ),
    ],
)
def test_shape_errors_say_what_was_expected_and_received(spec, shape, fragments):
    with pytest.raises(ShapeError) as raised:
        spec.output_shape(shape)
    for fragment in fragments:
        assert fragment in str(raised.value)
    kind = spec.kind
    with pytest.raises(ShapeError):
        build(kind, spec, shape)


# ----------------------------------------------------------------------- spec validation


def test_pairs_are_given_as_yaml_lists():
    spec = Conv2dSpec.model_validate(
        {"kind": "conv2d", "filters": 4, "kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0]}
    )
    assert spec.output_shape((None, 1, 8, 8)) == (None, 4, 4, 7)
    assert MaxPool2dSpec.model_validate({"kind": "maxpool2d", "kernel_size": 2}).stride is None


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "conv2d", "filters": 4, "kernel_size": 0},
        {"kind": "conv2d", "filters": 4, "kernel_size": [3, 0]},
        {"kind": "conv2d", "filters": 4, "kernel_size": [3]},
        {"kind": "conv2d", "filters": 4, "kernel_size": [3, 3, 3]},
        {"kind": "conv2d", "filters": 4, "kernel_size": "3"},
        {"kind": "conv2d", "filters": 0, "kernel_size": 3},
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "stride": 0},
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "dilation": 0},
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "groups": 0},
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "padding": -1},
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "padding": [1, -1]},
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "padding": "full"},
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "padding": True},
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "activation": "softmax"},
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "units": 3},
        {"kind": "conv2d", "filters": 4},
        {"kind": "maxpool2d", "kernel_size": 0},
        {"kind": "maxpool2d", "kernel_size": 2, "stride": 0},
        {"kind": "avgpool2d", "kernel_size": 2, "padding": -1},
        {"kind": "avgpool2d", "kernel_size": 2, "padding": "SAME"},
        {"kind": "avgpool2d", "kernel_size": 2, "trainable": False},
    ],
)
def test_bad_values_are_validation_errors(fields):
    spec_class = {"conv2d": Conv2dSpec, "maxpool2d": MaxPool2dSpec, "avgpool2d": AvgPool2dSpec}
    with pytest.raises(ValidationError):
        spec_class[fields["kind"]].model_validate(fields)


# ------------------------------------------------------------------- dtype and speed


@pytest.mark.parametrize("kind,spec,in_shape", CASES, ids=IDS)
def test_float32_stays_float32(kind, spec, in_shape):
    layer = build(kind, spec, in_shape, np.float32)
    x = np.random.default_rng(0).normal(size=(2, *in_shape[1:])).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_a_cifar_sized_batch_runs_vectorized():
    """64 images of 3×32×32: a per-pixel Python loop would take minutes, this takes ms."""
    spec = conv(filters=16, kernel_size=3, padding="same", activation="relu")
    layer = build("conv2d", spec, (None, 3, 32, 32), np.float32)
    x = np.random.default_rng(0).normal(size=(64, 3, 32, 32)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.shape == (64, 16, 32, 32)
    assert layer.backward(y).shape == x.shape
    pool = build("maxpool2d", maxpool(kernel_size=2), (None, 16, 32, 32), np.float32)
    assert pool.backward(pool.forward(y, training=True)).shape == y.shape


def test_im2col_elements_is_what_a_training_pass_keeps():
    """The memory estimate's hook for conv2d counts exactly the im2col matrix of a batch."""
    for spec, in_shape in examples():
        layer = Conv2d(spec, "c", in_shape, np.random.default_rng(0), np.float64)
        layer.forward(np.random.default_rng(1).normal(size=(3, *in_shape[1:])), training=True)
        assert layer._cols.size == 3 * im2col_elements(spec, in_shape), spec
