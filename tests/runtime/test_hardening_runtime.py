"""The deploy-side runtime under damaged model files, hostile external data locations, bad
inputs, big inputs and many threads."""

from __future__ import annotations

import importlib
import os
import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from conftest import ROOT

import nnspec
from nnspec_runtime import Model, RuntimeModelError, wire
from nnspec_runtime import model as runtime_model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """An iris model with its weights inside, the same with external data (the 2 GB threshold
    lowered so that a small model gets a ``.onnx.data`` file), and an image model."""
    tmp = tmp_path_factory.mktemp("models")
    network = nnspec.train(nnspec.load_spec(ROOT / "specs" / "iris.yaml")).network
    nnspec.export(network, tmp / "iris.onnx")
    (tmp / "ext").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importlib.import_module("nnspec.onnxio.lower"), "MAX_PROTOBUF", 10_000)
        nnspec.export(network, tmp / "ext" / "m.onnx")
    assert (tmp / "ext" / "m.onnx.data").is_file()
    nnspec.export(
        nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "lenet.yaml")), tmp / "img.onnx"
    )
    return {"iris": tmp / "iris.onnx", "ext": tmp / "ext" / "m.onnx", "img": tmp / "img.onnx"}


def _copy_external(models, dest: Path, data: bool = True) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(models["ext"], dest / "m.onnx")
    if data:
        shutil.copy(models["ext"].with_name("m.onnx.data"), dest / "m.onnx.data")
    return dest / "m.onnx"


def _relocate(src: Path, dest: Path, location: str, only: str | None = None) -> Path:
    """A copy of the external-data model ``src`` whose tensors (or just ``only``) name
    ``location`` as their data file: the edit a hostile model file would make."""
    model = onnx.load(str(src), load_external_data=False)
    for t in model.graph.initializer:
        if only is None or t.name == only:
            for entry in t.external_data:
                if entry.key == "location":
                    entry.value = location
    dest.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dest))
    return dest


@pytest.fixture
def no_onnxruntime_session(monkeypatch):
    """Fail the test if the runtime hands the file to onnxruntime: it must refuse it first."""

    def refuse(*args, **kwargs):
        raise AssertionError("onnxruntime was asked to open the model")

    monkeypatch.setattr(runtime_model, "_session", refuse)


# --- Damaged model files ---------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.9, 0.999])
def test_truncated_model_is_a_clear_error(tmp_path, models, fraction, no_onnxruntime_session):
    whole = models["iris"].read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(whole[: int(len(whole) * fraction)])
    with pytest.raises(RuntimeModelError) as e:
        Model(cut, device="cpu")
    msg = str(e.value)
    assert msg.startswith(f"{cut}: not a loadable ONNX model: truncated, damaged or not ONNX")
    assert "past the end" in msg and "ONNXRuntimeError" not in msg
    with pytest.raises(RuntimeModelError, match="truncated, damaged or not ONNX"):
        Model(cut.read_bytes(), device="cpu")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_a_clear_error(tmp_path, seed):
    bad = tmp_path / "random.onnx"
    bad.write_bytes(random.Random(seed).randbytes(4096))
    with pytest.raises(RuntimeModelError, match=f"{bad}: not a loadable ONNX model"):
        Model(bad, device="cpu")


def test_empty_file_and_bytes(tmp_path, no_onnxruntime_session):
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(RuntimeModelError, match="empty.onnx: the file is empty; expected an ONNX"):
        Model(tmp_path / "empty.onnx", device="cpu")
    with pytest.raises(RuntimeModelError, match="<model bytes>: no bytes; expected an ONNX model"):
        Model(b"", device="cpu")


def test_wire_format_without_a_graph(tmp_path, no_onnxruntime_session):
    (tmp_path / "nograph.onnx").write_bytes(b"\x08\x08")  # ir_version: 8, and nothing else
    with pytest.raises(RuntimeModelError, match="holds no graph"):
        Model(tmp_path / "nograph.onnx", device="cpu")


@pytest.mark.parametrize("key", ["iris", "img"])
def test_any_truncation_fails_clearly_or_changes_nothing(models, key):
    """Cut at every byte near the start and the end and at 50 points between. A cut between
    two metadata entries near the end leaves a valid, smaller model: that one must give the
    same predictions and names (only metrics may be lost); every other cut is a clear error."""
    whole_bytes = models[key].read_bytes()
    whole = Model(whole_bytes, device="cpu")
    x = np.random.default_rng(0).normal(size=(3, whole.n_features))
    want = whole.predict(x)
    n = len(whole_bytes)
    middle = random.Random(0).sample(range(20, n - 400), 50)
    loaded = 0
    for cut in [*range(1, 20), *middle, *range(n - 400, n)]:
        try:
            model = Model(whole_bytes[:cut], device="cpu")
        except RuntimeModelError as e:
            assert "not a loadable ONNX model" in str(e), (cut, str(e))
            continue
        loaded += 1
        assert model.class_names == whole.class_names and model.feature_names is not None
        np.testing.assert_array_equal(model.predict(x).probabilities, want.probabilities)
    assert loaded < 400  # most cuts near the end fall inside the metadata


def test_the_wire_format_reader_skips_groups_and_unknown_fields():
    graph = b"\x3a\x00"  # field 7 (graph), empty
    group = b"\xdb\x06" + b"\x08\x01" + b"\xdc\x06"  # field 107: start group, a varint, end
    fixed = b"\x99\x06" + bytes(8) + b"\x9d\x06" + bytes(4)  # fields 99 (64-bit), 99 (32-bit)
    assert wire.external_refs(group + fixed + graph) == []
    with pytest.raises(wire.Corrupt, match="never closed"):
        wire.external_refs(graph + b"\xdb\x06\x08\x01")
    with pytest.raises(wire.Corrupt, match="past the end"):
        wire.external_refs(graph + b"\x99\x06" + bytes(3))


def test_whole_models_still_load(models):
    for key in ("iris", "ext", "img"):
        assert Model(models[key], device="cpu").task == "classification"
    assert Model(models["iris"].read_bytes(), device="cpu").n_features == 4


# --- External data ---------------------------------------------------------------------------


def test_missing_external_data(tmp_path, models, no_onnxruntime_session):
    path = _copy_external(models, tmp_path / "alone", data=False)
    with pytest.raises(RuntimeModelError) as e:
        Model(path, device="cpu")
    assert str(e.value).startswith(
        f"{path}: the external data file 'm.onnx.data' (of tensor 'preprocess.mean' and 5 more) "
        f"is missing in {path.parent}; a model over 2 GB keeps its weights in <model>.onnx.data,"
    )


def test_truncated_external_data(tmp_path, models, no_onnxruntime_session):
    path = _copy_external(models, tmp_path / "short")
    data = path.with_name("m.onnx.data")
    data.write_bytes(data.read_bytes()[:5000])
    with pytest.raises(
        RuntimeModelError, match=r"'m.onnx.data' .* is truncated or damaged: tensor"
    ):
        Model(path, device="cpu")


def test_external_data_from_bytes(models, no_onnxruntime_session):
    with pytest.raises(RuntimeModelError, match="load it from its .onnx path"):
        Model(models["ext"].read_bytes(), device="cpu")


def test_external_data_directory_instead_of_file(tmp_path, models, no_onnxruntime_session):
    path = _copy_external(models, tmp_path / "d", data=False)
    path.with_name("m.onnx.data").mkdir()
    with pytest.raises(RuntimeModelError, match="'m.onnx.data' .* is a directory in"):
        Model(path, device="cpu")


@pytest.mark.parametrize(
    "location,message",
    [
        ("../../x", "points outside the model's directory"),
        ("../outside/m.onnx.data", "points outside the model's directory"),
        ("x/../m.onnx.data", "points outside the model's directory"),
        ("..\\outside\\m.onnx.data", "points outside the model's directory"),
        ("ABSOLUTE", "is an absolute path; refused"),
        ("/etc/passwd", "is an absolute path; refused"),
        ("C:/Windows/win.ini", "is an absolute path; refused"),
        ("*/_ORT_MEM_ADDR_/*", "is onnxruntime's marker for data in memory"),
    ],
)
def test_external_data_outside_the_model_directory_is_refused(
    tmp_path, models, location, message, no_onnxruntime_session
):
    # A real file outside the model's directory, that a naive loader would read as weights.
    outside = _copy_external(models, tmp_path / "outside").with_name("m.onnx.data")
    if location == "ABSOLUTE":
        location = str(outside)
    path = _relocate(models["ext"], tmp_path / "deploy" / "m.onnx", location)
    shutil.copy(outside, path.with_name("m.onnx.data"))  # the honest file is there too
    with pytest.raises(RuntimeModelError) as e:
        Model(path, device="cpu")
    assert str(e.value).startswith(f"{path}: the external data file {location!r} (of tensor ")
    assert message in str(e.value)


def test_one_hostile_tensor_among_good_ones_is_refused(tmp_path, models, no_onnxruntime_session):
    path = _relocate(models["ext"], tmp_path / "d" / "m.onnx", "../../x", only="dense_1.bias")
    shutil.copy(models["ext"].with_name("m.onnx.data"), path.with_name("m.onnx.data"))
    with pytest.raises(RuntimeModelError, match=r"'../../x' \(of tensor 'dense_1.bias'\) points"):
        Model(path, device="cpu")


def test_external_data_symlinked_outside_is_refused(tmp_path, models, no_onnxruntime_session):
    outside = _copy_external(models, tmp_path / "outside").with_name("m.onnx.data")
    path = _copy_external(models, tmp_path / "deploy", data=False)
    os.symlink(outside, path.with_name("m.onnx.data"))
    with pytest.raises(RuntimeModelError, match=f"is a link to {outside}, outside the model's"):
        Model(path, device="cpu")


def test_what_this_onnxruntime_does_with_a_traversal(tmp_path, models):
    """Documents the installed onnxruntime: 1.32 refuses '..' itself, older ones may read the
    file. Either way the runtime's own message is the one users see (tests above)."""
    outside = _copy_external(models, tmp_path / "outside").with_name("m.onnx.data")
    path = _relocate(models["ext"], tmp_path / "deploy" / "m.onnx", "../outside/m.onnx.data")
    assert outside.is_file()
    try:
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        refused = None
    except Exception as e:  # onnxruntime's own exception types
        refused = str(e)
    if refused is not None:
        assert "escapes model directory" in refused or "External data" in refused


def test_nested_tensors_with_external_data_are_checked(tmp_path):
    """Tensors in Constant nodes and If branches (subgraphs) may name external data too."""
    from onnx import TensorProto, external_data_helper, helper, numpy_helper

    def const(name: str, value: float) -> onnx.NodeProto:
        tensor = numpy_helper.from_array(np.full((1, 4), value, np.float32), name + "_value")
        return helper.make_node("Constant", [], [name], value=tensor)

    def branch(name: str, value: float) -> onnx.GraphProto:
        out = helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4])
        return helper.make_graph([const(name, value)], name, [], [out])

    nodes = [
        const("c", 2.0),
        helper.make_node("ReduceSum", ["input"], ["s"], keepdims=0),
        helper.make_node("Less", ["s", "zero"], ["cond"]),
        helper.make_node(
            "If",
            ["cond"],
            ["b"],
            then_branch=branch("then_out", 1.0),
            else_branch=branch("else_out", 3.0),
        ),
        helper.make_node("Mul", ["input", "c"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["prediction"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["batch", 4])],
        initializer=[numpy_helper.from_array(np.zeros(1, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    external_data_helper.convert_model_to_external_data(
        model,
        all_tensors_to_one_file=True,
        location="w.data",
        size_threshold=0,
        convert_attribute=True,
    )
    (tmp_path / "ok").mkdir()
    onnx.save(model, str(tmp_path / "ok" / "m.onnx"))
    want = {t.name for t in external_data_helper._get_all_tensors(model)}
    raw = (tmp_path / "ok" / "m.onnx").read_bytes()
    found = {name for name, location, _, _ in wire.external_refs(raw)}
    assert found == want == {"zero", "c_value", "then_out_value", "else_out_value"}
    m = Model(tmp_path / "ok" / "m.onnx", device="cpu")
    np.testing.assert_allclose(m.run(np.ones((2, 4)))["prediction"], np.full((2, 4), 5.0))
    # Now point the tensor of the else branch's Constant node outside.
    (else_branch,) = (a.g for a in model.graph.node[3].attribute if a.name == "else_branch")
    else_node = else_branch.node[0]
    for entry in else_node.attribute[0].t.external_data:
        if entry.key == "location":
            entry.value = "../../x"
    (tmp_path / "bad").mkdir()
    onnx.save(model, str(tmp_path / "bad" / "m.onnx"))
    with pytest.raises(RuntimeModelError, match=r"'../../x' \(of tensor 'else_out_value'\)"):
        Model(tmp_path / "bad" / "m.onnx", device="cpu")


# --- Inputs ----------------------------------------------------------------------------------


class _NoRun:
    def run(self, *args):
        raise AssertionError("onnxruntime was given a bad input")


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((3, 5)), "expected 4 features per row, got 5"),
        (np.zeros((3, 3)), "expected 4 features per row, got 3"),
        (np.zeros(4), r"expected a 2-D array \(batch, 4\), got shape \(4,\)"),
        (np.float64(1.0), r"expected a 2-D array \(batch, 4\), got shape \(\)"),
        (np.zeros((2, 2, 4)), r"expected a 2-D array \(batch, 4\), got shape \(2, 2, 4\)"),
        (np.ones((2, 4), complex), r"got an array of dtype complex128 \(complex numbers\)"),
        (np.ones((2, 4), np.complex64), r"dtype complex64 \(complex numbers\)"),
        (np.ones((2, 4), "m8[s]"), r"dtype timedelta64\[s\] \(time spans\)"),
        (np.ones((2, 4), "M8[s]"), r"dtype datetime64\[s\] \(dates\)"),
        (np.full((2, 4), "1.5"), r"expected numbers \(float, int or bool\), got .*<U3 \(strings\)"),
        (np.full((2, 4), b"1"), r"\(byte strings\)"),
        (np.array([[1.0, None, 1.0, 1.0]]), r"dtype object \(Python objects\)"),
        ([[1, 2, 3, 4], [1, 2]], "input is not an array of numbers"),
        (np.array([[1.0, 1.0, 1.0, np.nan]]), r"NaN or inf \(in float32\) at row 0, column 3"),
        (np.array([[1.0, 1.0], [1.0, -np.inf]]).repeat(2, 1), r"at row 1, column 2"),
        (np.array([[1.0, 2.0, 1e39, 1.0]]), r"NaN or inf \(in float32\) at row 0, column 2"),
        # inf and -inf: the quick test's sum is NaN, not inf.
        (np.array([[1.0, np.inf, -np.inf, 1.0]]), r"NaN or inf \(in float32\) at row 0, column 1"),
    ],
)
def test_bad_inputs_are_refused_before_onnxruntime(models, bad, match):
    model = Model(models["iris"], device="cpu")
    model.session = _NoRun()
    with pytest.raises(RuntimeModelError, match=match):
        model.predict(bad)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((2, 1, 28, 27)), r"expected images of shape \(batch, 1, 28, 28\), got"),
        (np.zeros((2, 3, 28, 28)), r"expected images of shape \(batch, 1, 28, 28\)"),
        (np.zeros((2, 783)), "expected 784 features per row, got 783"),
        (np.zeros((2, 1, 1, 28, 28)), r"expected a 2-D array \(batch, 784\) or \(batch, 1, 28, 28"),
        (np.full((1, 1, 28, 28), np.nan), "at sample 0, channel 0, row 0, column 0"),
    ],
)
def test_bad_image_inputs_are_refused_before_onnxruntime(models, bad, match):
    model = Model(models["img"], device="cpu")
    model.session = _NoRun()
    with pytest.raises(RuntimeModelError, match=match):
        model.predict(bad)


def test_finite_values_whose_sum_overflows_are_accepted(models):
    # The quick finiteness test sums the inputs: 3e38 + 3e38 is inf in float32, and the exact
    # test must then clear the values themselves.
    model = Model(models["iris"], device="cpu")
    big = np.full((3, 4), 3e38, dtype=np.float32)
    np.testing.assert_array_equal(model.check_input(big), big)
    big[2, 1] = np.nan
    with pytest.raises(RuntimeModelError, match="at row 2, column 1"):
        model.check_input(big)


def test_accepted_input_types_give_the_same_answer(models):
    model = Model(models["iris"], device="cpu")
    x = np.array([[5, 3, 1, 0], [6, 3, 5, 2], [1, 0, 1, 0]])
    want = model.run(x.astype(np.float32))["probabilities"]
    for same in (x, x.tolist(), x.astype(np.uint8), x.astype(np.float16), np.asfortranarray(x)):
        np.testing.assert_array_equal(model.run(same)["probabilities"], want)
    assert model.run(np.zeros((0, 4)))["probabilities"].shape == (0, 3)


# --- Chunks and threads ----------------------------------------------------------------------


@pytest.mark.parametrize("key,shape", [("iris", (5003, 4)), ("img", (70, 1, 28, 28))])
def test_chunked_results_are_identical(models, key, shape):
    x = np.random.default_rng(3).normal(size=shape)
    whole = Model(models[key], device="cpu", chunk_size=10**6)
    for chunk in (1, 7, 64):
        model = Model(models[key], device="cpu", chunk_size=chunk)
        for name, value in whole.run(x).items():
            np.testing.assert_array_equal(model.run(x)[name], value, err_msg=f"{name}, {chunk}")


def test_default_chunks_bound_image_batches(models):
    assert Model(models["iris"], device="cpu").chunk_size == runtime_model.DEFAULT_CHUNK
    img = Model(models["img"], device="cpu")
    assert img.chunk_size * 4 * 784 <= runtime_model.CHUNK_BYTES


@pytest.mark.parametrize("chunk_size", [None, 5])
def test_predict_from_8_threads_matches_sequential_calls(models, chunk_size):
    model = Model(models["iris"], device="cpu", chunk_size=chunk_size)
    rng = np.random.default_rng(4)
    inputs = [rng.normal(2, 3, size=(int(rng.integers(1, 400)), 4)) for _ in range(64)]
    sequential = [model.predict(x) for x in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            threaded = list(pool.map(model.predict, inputs))
            for want, got in zip(sequential, threaded, strict=True):
                np.testing.assert_array_equal(got.probabilities, want.probabilities)
                np.testing.assert_array_equal(got.label_indices, want.label_indices)
                assert list(got.labels) == list(want.labels)


def test_image_model_from_8_threads(models):
    model = Model(models["img"], device="cpu", chunk_size=3)
    rng = np.random.default_rng(5)
    inputs = [rng.normal(size=(int(rng.integers(1, 12)), 1, 28, 28)) for _ in range(24)]
    sequential = [model.run(x)["probabilities"] for x in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda x: model.run(x)["probabilities"], inputs))
    for want, got in zip(sequential, threaded, strict=True):
        np.testing.assert_array_equal(got, want)
