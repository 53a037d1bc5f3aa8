"""Models from others in the runtime: special files never opened, graphs that would take
minutes to open refused, locations that are not file names, and outputs that do not say what
nnspec's outputs say (a float label, a rank-1 probability, a label out of range)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnspec_runtime import Model, RuntimeModelError
from nnspec_runtime import model as runtime_model


@pytest.fixture
def no_session(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("onnxruntime was asked to open the model")

    monkeypatch.setattr(runtime_model, "_session", refuse)


def _save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)


def _classifier(
    label_type=TensorProto.INT64, label_dims=("batch",), probs_dims=("batch", 2), label_value=None
) -> onnx.ModelProto:
    """x (batch, 2) -> probabilities = Softmax(x), label = ArgMax (or a constant label)."""
    nodes = [helper.make_node("Softmax", ["x"], ["p0"], axis=1)]
    if len(probs_dims) == 1:
        nodes.append(helper.make_node("ReduceMax", ["p0"], ["probabilities"], keepdims=0))
    else:
        nodes.append(helper.make_node("Identity", ["p0"], ["probabilities"]))
    if label_value is not None:
        nodes.append(helper.make_node("ArgMax", ["x"], ["a"], axis=1, keepdims=0))
        nodes.append(helper.make_node("Mul", ["a", "zero"], ["z"]))
        nodes.append(helper.make_node("Add", ["z", "k"], ["label"]))
    elif label_type == TensorProto.INT64:
        nodes.append(helper.make_node("ArgMax", ["x"], ["label"], axis=1, keepdims=0))
    else:
        nodes.append(helper.make_node("ArgMax", ["x"], ["a"], axis=1, keepdims=0))
        nodes.append(helper.make_node("Cast", ["a"], ["label"], to=label_type))
    inits = []
    if label_value is not None:
        inits = [
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(np.array(label_value, np.int64), "k"),
        ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, list(probs_dims)),
            helper.make_tensor_value_info("label", label_type, list(label_dims)),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    helper.set_model_props(model, {"nnspec_class_names": '["a", "b"]'})
    return model


def _regressor(out_type=TensorProto.FLOAT, rank=2) -> onnx.ModelProto:
    nodes = [helper.make_node("Identity", ["x"], ["p"])]
    if rank == 1:
        nodes.append(helper.make_node("ReduceSum", ["p"], ["prediction"], keepdims=0))
    elif rank == 3:
        nodes.append(helper.make_node("Unsqueeze", ["p", "ax"], ["prediction"]))
    elif out_type == TensorProto.STRING:
        nodes.append(helper.make_node("Cast", ["p"], ["prediction"], to=TensorProto.STRING))
    else:
        nodes.append(helper.make_node("Identity", ["p"], ["prediction"]))
    dims = {1: ["batch"], 2: ["batch", 2], 3: ["batch", 2, 1]}[rank]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("prediction", out_type, dims)],
        initializer=[numpy_helper.from_array(np.array([2], np.int64), "ax")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def _external_model(location: str) -> onnx.ModelProto:
    """x + w, with w's data in the external file ``location``."""
    t = numpy_helper.from_array(np.ones(2, np.float32), "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["prediction"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["batch", 2])],
        initializer=[t],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    return model


# --- special files -----------------------------------------------------------------------------


def test_a_fifo_as_the_model_is_refused_without_blocking(tmp_path, no_session):
    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    done = []
    worker = threading.Thread(target=lambda: done.append(_refusal(fifo)), daemon=True)
    worker.start()
    worker.join(10)
    assert done and "FIFO" in done[0], done


def _refusal(path) -> str:
    try:
        Model(path, device="cpu")
    except RuntimeModelError as e:
        return str(e)
    return "loaded"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_as_the_model_is_refused(device, no_session):
    with pytest.raises(RuntimeModelError, match="character device; expected a regular model"):
        Model(device, device="cpu")


def test_a_fifo_as_external_data_is_refused(tmp_path, no_session):
    model = _external_model("w.data")
    path = _save(model, tmp_path / "m.onnx")
    os.mkfifo(tmp_path / "w.data")
    with pytest.raises(RuntimeModelError, match="'w.data'.*is a FIFO"):
        Model(path, device="cpu")


@pytest.mark.parametrize(
    "location, why",
    [
        ("w\x00.data", "control character"),
        ("a" * 5000, "characters long"),
        ("d/" + "b" * 300, "file name over 255"),
    ],
)
def test_locations_that_are_not_file_names_are_refused(tmp_path, location, why, no_session):
    model = _external_model(location)
    path = _save(model, tmp_path / "m.onnx")
    with pytest.raises(RuntimeModelError, match=why):
        Model(path, device="cpu")


# --- hangs -------------------------------------------------------------------------------------


def test_many_unused_initializers_are_refused_before_onnxruntime(tmp_path, no_session):
    n = runtime_model.MAX_UNUSED_INITIALIZERS + 1
    inits = [numpy_helper.from_array(np.zeros(1, np.float32), f"u{i}") for i in range(n)]
    model = _regressor()
    model.graph.initializer.extend(inits)
    path = _save(model, tmp_path / "m.onnx")
    start = time.perf_counter()
    with pytest.raises(
        RuntimeModelError, match=r"initializers are used by no node \(at most 1,024\)"
    ):
        Model(path, device="cpu")
    assert time.perf_counter() - start < 5


def test_a_few_unused_initializers_still_load(tmp_path):
    model = _regressor()
    model.graph.initializer.extend(
        [numpy_helper.from_array(np.zeros(1, np.float32), f"u{i}") for i in range(10)]
    )
    assert Model(_save(model, tmp_path / "m.onnx"), device="cpu").task == "regression"


# --- outputs that are not what nnspec writes ---------------------------------------------------


@pytest.mark.parametrize(
    "model, why",
    [
        (_classifier(label_type=TensorProto.FLOAT), "output label as tensor\\(int64\\)"),
        (_classifier(probs_dims=("batch",)), "output probabilities as tensor\\(float\\)"),
        (_regressor(rank=1), "output prediction as tensor\\(float\\) of shape \\(batch, n\\)"),
        (_regressor(rank=3), "got tensor\\(float\\) of rank 3"),
        (_regressor(out_type=TensorProto.STRING), "got tensor\\(string\\)"),
    ],
)
def test_outputs_of_the_wrong_type_or_rank_are_refused(tmp_path, model, why):
    with pytest.raises(RuntimeModelError, match=why):
        Model(_save(model, tmp_path / "m.onnx"), device="cpu")


@pytest.mark.parametrize("label", [2, -1, 7])
def test_a_label_out_of_range_is_refused_not_wrapped(tmp_path, label):
    m = Model(_save(_classifier(label_value=label), tmp_path / "m.onnx"), device="cpu")
    with pytest.raises(RuntimeModelError, match=f"class index {label}; expected 0 to 1"):
        m.predict(np.zeros((3, 2)))


def test_a_label_in_range_predicts(tmp_path):
    m = Model(_save(_classifier(label_value=1), tmp_path / "m.onnx"), device="cpu")
    assert list(m.predict(np.zeros((3, 2))).labels) == ["b", "b", "b"]


@pytest.mark.parametrize("key", ["nnspec_class_names", "nnspec_tabular"])
def test_metadata_nested_thousands_deep_is_a_clear_error(tmp_path, key):
    model = _classifier()
    helper.set_model_props(model, {"nnspec_class_names": '["a", "b"]', key: "[" * 100_000})
    with pytest.raises(RuntimeModelError, match=f"metadata {key} is"):
        Model(_save(model, tmp_path / "m.onnx"), device="cpu")
