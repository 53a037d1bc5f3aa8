"""The operator patterns that the real exporters' fixtures do not reach, on graphs built with
onnx.helper: Constant-node weights, Gemm's transB/alpha/beta, BatchNormalization folded
before an activation, auto_pad, Dropout, Squeeze, computed Reshape shapes, per-channel
preprocessing, activations that commute with max pooling; and the refusals, each naming the
node, its op type, where it sits and the supported list, with nothing written."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from import_checks import max_errors, run
from onnx import TensorProto, helper, numpy_helper

import nnspec
from nnspec.cli.commands import main
from nnspec.onnxio.import_model import import_graph
from nnspec.onnxio.import_model import write_import as _write
from nnspec.onnxio.import_patterns import PATTERNS
from nnspec.pipeline import compile_imported

RNG = np.random.default_rng(7)


def write_import(imp, path):
    return _write(imp, path, compile_imported)


def _w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _model(nodes, inits, in_shape, out_shape, opset=17, out_name="y"):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", *out_shape])],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(m, full_check=True)
    return m


def _import_and_compare(model, tmp_path, in_shape, task=None):
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    imp = import_graph(path, task=task)
    check = write_import(imp, tmp_path / "m.yaml")
    spec = nnspec.load_spec(tmp_path / "m.yaml")
    x = np.random.default_rng(5).standard_normal((9, *in_shape)).astype(np.float32)
    want = run(path, x)
    got = run(nnspec.compile(spec).model, x)
    key = "prediction" if spec.task == "regression" else "probabilities"
    src = want[model.graph.output[0].name]
    np.testing.assert_allclose(got[key], src, rtol=1e-4, atol=1e-5)
    return spec, imp, check, max_errors(got[key], src)


def test_constant_node_weights_and_gemm_attributes(tmp_path):
    w1, b1, w2, b2 = _w(4, 6), _w(6), _w(3, 6), _w(1, 3)
    nodes = [
        helper.make_node("Constant", [], ["w1"], value=numpy_helper.from_array(w1)),
        helper.make_node("Constant", [], ["b1"], value=numpy_helper.from_array(b1)),
        helper.make_node("MatMul", ["x", "w1"], ["z1"], name="hidden/MatMul"),
        helper.make_node("Add", ["z1", "b1"], ["h1"], name="hidden/Add"),
        helper.make_node("Relu", ["h1"], ["a1"], name="hidden/Relu"),
        helper.make_node(
            "Gemm", ["a1", "w2", "b2"], ["z2"], name="out/Gemm", transB=1, alpha=0.5, beta=2.0
        ),
        helper.make_node("Softmax", ["z2"], ["y"], name="out/Softmax", axis=1),
    ]
    spec, imp, _, err = _import_and_compare(
        _model(nodes, {"w2": w2, "b2": b2}, [4], [3]), tmp_path, [4]
    )
    assert [la.kind for la in spec.layers] == ["dense", "dense"]
    assert spec.layers[0].activation == "relu" and spec.layers[1].activation == "softmax"
    np.testing.assert_allclose(imp.state.layers[1].arrays["weight"], 0.5 * w2.T)
    np.testing.assert_allclose(imp.state.layers[1].arrays["bias"], 2.0 * b2[0])
    assert err[0] < 1e-6


def test_batchnorm_before_an_activation_is_folded_into_the_conv(tmp_path):
    c = 4
    inits = {
        "w": _w(c, 2, 3, 3),
        "b": _w(c),
        "s": _w(c) + 1.0,
        "beta": _w(c),
        "mean": _w(c),
        "var": np.abs(_w(c)) + 0.3,
        "fw": _w(c * 2 * 2, 3),
        "shape": np.array([0, -1], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["c", "s", "beta", "mean", "var"], ["n"], name="bn", epsilon=1e-3
        ),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "fw"], ["y"], name="fc"),
    ]
    spec, imp, _, err = _import_and_compare(
        _model(nodes, inits, [2, 4, 4], [3]), tmp_path, [2, 4, 4]
    )
    assert [la.kind for la in spec.layers] == ["conv2d", "maxpool2d", "flatten", "dense"]
    assert spec.layers[0].activation == "relu"
    assert ("bn", "BatchNormalization", "folded into conv (batchnorm)") in imp.state.rows
    print(f"batchnorm folded: max abs err {err[0]:.3g}")


def test_activation_after_max_pool_moves_onto_the_conv(tmp_path):
    inits = {"w": _w(3, 1, 3, 3), "fw": _w(3 * 2 * 2, 2)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Tanh", ["p"], ["t"], name="tanh"),
        helper.make_node("Flatten", ["t"], ["f"], name="flat", axis=1),
        helper.make_node("Gemm", ["f", "fw"], ["y"], name="fc"),
    ]
    spec, imp, _, _ = _import_and_compare(_model(nodes, inits, [1, 6, 6], [2]), tmp_path, [1, 6, 6])
    assert spec.layers[0].activation == "tanh" and not spec.layers[0].use_bias
    assert any("moved before pool" in what for _, _, what in imp.state.rows)


def test_preprocessing_per_channel_auto_pad_dropout_squeeze(tmp_path):
    mean = np.array([0.5, -1.0, 2.0], np.float32).reshape(1, 3, 1, 1)
    inits = {
        "m": mean,
        "k": np.array([2.0, 0.25, 1.0], np.float32).reshape(3, 1, 1),
        "w": _w(5, 3, 3, 3),
        "ratio": np.array(0.3, np.float32),
        "axes": np.array([2, 3], np.int64),
        "fw": _w(5, 4),
        "fb": _w(4),
    }
    nodes = [
        helper.make_node("Sub", ["x", "m"], ["xs"], name="norm/Sub"),
        helper.make_node("Mul", ["xs", "k"], ["xn"], name="norm/Mul"),
        helper.make_node("Conv", ["xn", "w"], ["c"], name="conv", auto_pad="SAME_UPPER"),
        helper.make_node("LeakyRelu", ["c"], ["r"], name="lrelu", alpha=0.01),
        helper.make_node(
            "AveragePool",
            ["r"],
            ["a"],
            name="avg",
            kernel_shape=[2, 2],
            auto_pad="SAME_UPPER",
            strides=[2, 2],
        ),  # fmt: skip
        helper.make_node("GlobalAveragePool", ["a"], ["g"], name="gap"),
        helper.make_node("Dropout", ["g", "ratio"], ["d"], name="drop"),
        helper.make_node("Squeeze", ["d", "axes"], ["s"], name="squeeze"),
        helper.make_node("Identity", ["s"], ["i"], name="id"),
        helper.make_node("Gemm", ["i", "fw", "fb"], ["y"], name="fc"),
    ]
    spec, imp, _, err = _import_and_compare(
        _model(nodes, inits, [3, 5, 5], [4]), tmp_path, [3, 5, 5]
    )
    kinds = [la.kind for la in spec.layers]
    assert kinds == ["conv2d", "avgpool2d", "globalavgpool2d", "dropout", "flatten", "dense"]
    assert spec.preprocess.standardize
    assert spec.layers[0].padding == 1  # SAME_UPPER of a 3×3 kernel is even: 1 each side
    assert spec.layers[1].padding == "same"  # 2×2/2 on 5×5: one row and column at the end
    assert spec.layers[3].rate == pytest.approx(0.3)
    with np.load(tmp_path / "m.weights.npz") as w:
        np.testing.assert_allclose(w["preprocess.mean"].reshape(-1), [0.5, -1.0, 2.0])
        np.testing.assert_allclose(w["preprocess.scale"].reshape(-1), [0.5, 4.0, 1.0])
    print(f"preprocessing, auto_pad: max abs err {err[0]:.3g}")


def test_reshape_computed_from_the_input_shape(tmp_path):
    """Shape(x)[0] concatenated with -1: the batch-agnostic flatten older exporters write."""
    inits = {
        "w": _w(2, 1, 3, 3),
        "zero": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
        "fw": _w(2 * 2 * 2, 3),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Shape", ["c"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Concat", ["n", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["c", "target"], ["f"], name="reshape"),
        helper.make_node("MatMul", ["f", "fw"], ["y"], name="fc"),
    ]
    spec, _, _, _ = _import_and_compare(_model(nodes, inits, [1, 4, 4], [3]), tmp_path, [1, 4, 4])
    assert [la.kind for la in spec.layers] == ["conv2d", "flatten", "dense"]


def _refused(model, tmp_path, capsys) -> str:
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "out.yaml")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]  # nothing written
    return err


def test_unsupported_op_names_the_node_its_op_where_it_sits_and_the_supported_list(
    tmp_path, capsys
):
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], name="fc1"),
        helper.make_node("Elu", ["h"], ["e"], name="act1"),
        helper.make_node("Gemm", ["e", "w2"], ["y"], name="fc2"),
    ]
    err = _refused(_model(nodes, {"w": _w(3, 4), "w2": _w(4, 2)}, [3], [2]), tmp_path, capsys)
    assert "node 'act1' (Elu), node 2 of 3, after 'fc1' (Gemm)" in err
    assert "no pattern for Elu" in err
    assert ", ".join(sorted(PATTERNS)) in err


@pytest.mark.parametrize(
    "nodes, inits, why",
    [
        (  # a residual connection: two computed inputs
            [
                helper.make_node("Gemm", ["x", "w"], ["h"], name="fc"),
                helper.make_node("Add", ["h", "x"], ["y"], name="skip"),
            ],
            {"w": _w(3, 3)},
            "'skip' (Add), node 2 of 2, after 'fc' (Gemm): cannot be imported: it reads 2 "
            "computed values",
        ),
        (
            [
                helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 0, 0]),
                helper.make_node("Flatten", ["c"], ["f"], name="flat"),
                helper.make_node("Gemm", ["f", "fw"], ["y"], name="fc"),
            ],
            {"w": _w(1, 1, 2, 2), "fw": _w(16, 3)},
            "pads [1, 1, 0, 0] (top, left, bottom, right) are uneven",
        ),
        (
            [
                helper.make_node("Gemm", ["x", "w"], ["h"], name="fc"),
                helper.make_node("LeakyRelu", ["h"], ["y"], name="lr", alpha=0.2),
            ],
            {"w": _w(3, 3)},
            "alpha 0.2: nnspec's leaky_relu has slope 0.01",
        ),
        (  # a weight computed from the data
            [helper.make_node("MatMul", ["x", "x"], ["y"], name="gram")],
            {},
            "'gram' (MatMul)",
        ),
    ],
)
def test_refusals(nodes, inits, why, tmp_path, capsys):
    conv = any(n.op_type == "Conv" for n in nodes)
    in_shape, out_shape = ([1, 4, 4], [3]) if conv else ([3], [3])
    err = _refused(_model(nodes, inits, in_shape, out_shape), tmp_path, capsys)
    assert why in err, err


def test_reduce_mean_without_keepdims_opset18_axes_input(tmp_path):
    inits = {"w": _w(4, 2, 3, 3), "axes": np.array([-1, -2], np.int64), "fw": _w(4, 3)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("ReduceMean", ["r", "axes"], ["m"], name="mean", keepdims=0),
        helper.make_node("MatMul", ["m", "fw"], ["y"], name="fc"),
    ]
    model = _model(nodes, inits, [2, 5, 5], [3], opset=18)
    spec, _, _, _ = _import_and_compare(model, tmp_path, [2, 5, 5])
    assert [la.kind for la in spec.layers] == ["conv2d", "globalavgpool2d", "flatten", "dense"]


def test_reshape_to_a_fixed_batch_other_than_the_graphs_is_refused(tmp_path, capsys):
    inits = {"shape": np.array([1, -1], np.int64), "w": _w(4, 2)}
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w"], ["y"], name="fc"),
    ]
    err = _refused(_model(nodes, inits, [1, 2, 2], [2]), tmp_path, capsys)
    assert "'flat' (Reshape)" in err and "to [1, -1]" in err
