"""nnspec_runtime: the deploy side, numpy + onnxruntime only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from helpers import NO_CUDA_MESSAGE, cuda_state

import nnspec
import nnspec_runtime
from nnspec_runtime import DeviceError, Model, RuntimeModelError


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory) -> tuple[Path, nnspec.Network]:
    network = nnspec.train(nnspec.load_spec(ROOT / "specs" / "iris.yaml")).network
    path = tmp_path_factory.mktemp("m") / "iris.onnx"
    nnspec.export(network, path)
    return path, network


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_runtime_imports_only_numpy_and_onnxruntime():
    stdlib = set(sys.stdlib_module_names)
    # nnspec_runtime.dask is the optional extra's subpackage (pip install "nnspec-runtime[dask]").
    extra = {"dask", "distributed", "pandas", "pyarrow"}
    for path in (ROOT / "runtime" / "nnspec_runtime").rglob("*.py"):
        third_party = _imports(path) - stdlib
        allowed = {"numpy", "onnxruntime"} | (extra if "dask" in path.parent.name else set())
        assert third_party <= allowed, (path.name, third_party)


def test_runtime_runs_with_nnspec_unimportable(iris_model):
    """A deploy machine without nnspec: block the import and predict."""
    code = (
        "import sys; sys.modules['nnspec'] = None; sys.modules['onnx'] = None\n"
        "import numpy as np, nnspec_runtime\n"
        f"m = nnspec_runtime.Model({str(iris_model[0])!r}, device='cpu')\n"
        "print(m.predict(np.array([[5.1, 3.5, 1.4, 0.2]])).labels[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "setosa"


def test_only_onnxio_imports_onnx():
    for path in (ROOT / "nnspec").rglob("*.py"):
        if "onnxio" in path.parts:
            continue
        assert "onnx" not in _imports(path), path


def test_predict_labels_and_probabilities(iris_model):
    path, network = iris_model
    model = Model(path, device="cpu")
    assert model.device == "cpu" and model.provider == "CPUExecutionProvider"
    assert model.class_names == ["setosa", "versicolor", "virginica"]
    assert model.n_features == 4
    x = np.random.default_rng(0).normal([5.8, 3.0, 3.7, 1.2], [0.8, 0.4, 1.7, 0.7], (50, 4))
    pred = model.predict(x)
    want = network.predict(x.astype(np.float32))
    np.testing.assert_allclose(pred.probabilities, want["probabilities"], rtol=1e-4, atol=1e-5)
    assert list(pred.labels) == [model.class_names[i] for i in pred.label_indices]


def test_auto_device_says_which_it_picked(iris_model):
    model = Model(iris_model[0], device="auto")
    assert model.device == ("cuda" if cuda_state() == "works" else "cpu")


@pytest.mark.skipif(cuda_state() == "works", reason="CUDA works here")
def test_cuda_without_gpu_is_a_clear_error(iris_model):
    with pytest.raises(DeviceError, match=NO_CUDA_MESSAGE[cuda_state()]) as e:
        Model(iris_model[0], device="cuda")
    # What to do: install onnxruntime-gpu, or (it is there) see to the driver or libraries.
    assert re.search("onnxruntime-gpu|NVIDIA driver", str(e.value))


def test_cuda_refused_when_session_falls_back(monkeypatch, iris_model):
    """If onnxruntime makes a CPU session although CUDA was asked for, refuse it."""
    import onnxruntime

    from nnspec_runtime import model as runtime_model

    monkeypatch.setattr(runtime_model, "_cuda_available", lambda ort: True)
    real = runtime_model._session
    monkeypatch.setattr(
        runtime_model,
        "_session",
        lambda ort, data, providers: real(ort, data, ["CPUExecutionProvider"]),
    )
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda: None, raising=False)
    with pytest.raises(DeviceError, match="device='cuda' was asked for"):
        Model(iris_model[0], device="cuda")
    assert Model(iris_model[0], device="auto").device == "cpu"


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((3, 5)), "expected 4 features per row, got 5"),
        (np.zeros(4), r"expected a 2-D array \(batch, 4\)"),
        (np.zeros((2, 2, 4)), "expected a 2-D array"),
        (np.array([["a", "b", "c", "d"]]), "expected numbers"),
        (np.array([[1.0, np.nan, 1.0, 1.0]]), r"NaN or inf \(in float32\) at row 0, column 1"),
        (np.array([[1.0, 2.0, 1e39, 1.0]]), r"NaN or inf \(in float32\) at row 0, column 2"),
    ],
)
def test_bad_inputs_are_clear_errors(iris_model, bad, match):
    with pytest.raises(RuntimeModelError, match=match):
        Model(iris_model[0], device="cpu").predict(bad)


def test_large_inputs_run_in_chunks(iris_model, monkeypatch):
    model = Model(iris_model[0], device="cpu", chunk_size=1000)
    calls = []
    real_run = model.session.run
    model.session = type(
        "S",
        (),
        {
            "run": lambda self, names, feeds: (
                calls.append(len(feeds["input"])) or real_run(names, feeds)
            ),
            "get_providers": lambda self: ["CPUExecutionProvider"],
        },
    )()
    x = np.random.default_rng(1).normal(size=(2500, 4))
    out = model.run(x)
    assert calls == [1000, 1000, 500]
    whole = Model(iris_model[0], device="cpu").run(x)
    np.testing.assert_array_equal(out["probabilities"], whole["probabilities"])


def test_predict_is_thread_safe(iris_model):
    model = Model(iris_model[0], device="cpu")
    x = np.random.default_rng(2).normal(size=(200, 4))
    want = model.run(x)["probabilities"]
    results = [None] * 8

    def work(i):
        results[i] = model.run(x)["probabilities"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(RuntimeModelError, match="no such model file"):
        Model(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(RuntimeModelError, match="not a loadable ONNX model"):
        Model(bad, device="cpu")


def test_regression_prediction(tmp_path):
    network = nnspec.train(nnspec.load_spec(ROOT / "specs" / "mcycle.yaml")).network
    nnspec.export(network, tmp_path / "m.onnx")
    pred = Model(tmp_path / "m.onnx", device="cpu").predict(np.array([[10.0], [20.0], [40.0]]))
    assert pred.task == "regression" and pred.target_names == ["accel"]
    want = network.forward(np.array([[10.0], [20.0], [40.0]]))
    np.testing.assert_allclose(pred.values, want, rtol=1e-4, atol=1e-4)
    assert pred.values[1, 0] < -50  # the crash dip around 20 ms


def test_version():
    assert nnspec_runtime.__version__ == nnspec.__version__


def _foreign_model(tmp_path, elem=None, outputs=("y",), meta=None) -> Path:
    import onnx
    from onnx import TensorProto, helper

    elem = elem or TensorProto.FLOAT
    nodes = [helper.make_node("Identity", ["input"], [name]) for name in outputs]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", elem, ["batch", 3])],
        [helper.make_tensor_value_info(name, elem, ["batch", 3]) for name in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    if meta:
        helper.set_model_props(model, meta)
    path = tmp_path / "foreign.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({}, "expected the outputs probabilities and label, or prediction; got y"),
        ({"elem": 11, "outputs": ("prediction",)}, r"expected one float32 input.*tensor\(double\)"),
        (
            {"outputs": ("prediction",), "meta": {"nnspec_feature_names": "not json"}},
            "nnspec_feature_names is not a JSON list of names",
        ),
        (
            {"outputs": ("prediction",), "meta": {"nnspec_feature_names": '["a", "b"]'}},
            "lists 2 feature names for 3 input features",
        ),
    ],
)
def test_foreign_or_damaged_models_are_clear_errors(tmp_path, kwargs, match):
    with pytest.raises(RuntimeModelError, match=match):
        Model(_foreign_model(tmp_path, **kwargs), device="cpu")
