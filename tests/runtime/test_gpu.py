"""The runtime on a real GPU. Skipped where CUDA does not work (CI, laptops, onnxruntime-gpu
on a machine without a GPU); with ``NNSPEC_REQUIRE_GPU=1`` they run anyway and fail there,
so that a GPU machine whose CUDA is broken cannot pass them by skipping.

On the lent GPU machine: install onnxruntime-gpu (see ../shared/gpu/README.md), then
``NNSPEC_REQUIRE_GPU=1 pytest -m gpu tests/runtime/test_gpu.py``; ``bench/gpu_proof.py`` records
the numbers.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from conftest import ROOT
from helpers import cuda_state

import nnspec
from nnspec import pipeline
from nnspec_runtime import Model

# Where CUDA does not start: a CPU build, or onnxruntime-gpu without a GPU.
STATE = cuda_state()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        STATE != "works" and os.environ.get("NNSPEC_REQUIRE_GPU") != "1",
        reason=f"CUDA does not work here (onnxruntime: {STATE})",
    ),
]


@pytest.fixture(scope="module")
def dbn_model(tmp_path_factory):
    spec = nnspec.load_spec(ROOT / "specs" / "dbn.yaml")
    network = nnspec.build_network(spec)
    dataset = pipeline.load_data(spec)
    network.fit_preprocess(pipeline.split_data(spec, dataset).train.x)
    path = tmp_path_factory.mktemp("gpu") / "dbn.onnx"
    nnspec.export(network, path)
    return path, dataset.x


def test_cuda_device_is_really_used(dbn_model):
    model = Model(dbn_model[0], device="cuda")
    assert model.device == "cuda"
    assert model.provider == "CUDAExecutionProvider"


def test_auto_picks_cuda(dbn_model):
    assert Model(dbn_model[0], device="auto").device == "cuda"


def test_cuda_matches_cpu(dbn_model):
    path, x = dbn_model
    cpu = Model(path, device="cpu").run(x)
    gpu = Model(path, device="cuda").run(x)
    # onnxruntime's CUDA provider uses TF32 matrix products by default: ~1e-3 relative.
    np.testing.assert_allclose(gpu["probabilities"], cpu["probabilities"], rtol=1e-2, atol=1e-3)
    agree = np.mean(gpu["label"] == cpu["label"])
    assert agree > 0.99


@pytest.fixture(scope="module")
def lenet_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpu") / "lenet.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "lenet.yaml")), path)
    x = np.random.default_rng(0).normal(size=(512, 1, 28, 28)).astype(np.float32)
    return path, x


@pytest.mark.parametrize("which", ["dbn", "lenet"])
def test_float32_parity_without_tf32(dbn_model, lenet_model, which):
    path, x = dbn_model if which == "dbn" else lenet_model
    cpu = Model(path, device="cpu").run(x)
    gpu = Model(path, device="cuda", use_tf32=False).run(x)
    np.testing.assert_allclose(gpu["probabilities"], cpu["probabilities"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(gpu["label"], cpu["label"])


@pytest.mark.parametrize("which", ["dbn", "lenet"])
def test_strict_session_runs_every_node_on_cuda(dbn_model, lenet_model, which):
    model = Model((dbn_model if which == "dbn" else lenet_model)[0], device="cuda", strict=True)
    assert model.provider == "CUDAExecutionProvider"


def test_lenet_past_cudnn_pooling_limit(lenet_model):
    """cuDNN's MaxPool refused 65536 rows in one run on an H200: the runtime caps chunks."""
    path, x = lenet_model
    model = Model(path, device="cuda", chunk_size=100_000, use_tf32=False)
    assert model.chunk_size == 65535
    big = np.concatenate([x] * 128)  # 65536 rows
    out = model.run(big)
    want = Model(path, device="cpu").run(x)["probabilities"]
    np.testing.assert_allclose(out["probabilities"][-512:], want, rtol=1e-4, atol=1e-5)


def test_iobinding_on_the_device(dbn_model):
    path, x = dbn_model
    model = Model(path, device="cuda", use_tf32=False, chunk_size=1000)
    value = model.to_device(x)
    assert value.device_name().lower() == "cuda"
    bound = model.bind(value, keep_on_device=True)
    out = bound.run()
    assert out["probabilities"].device_name().lower() == "cuda"
    want = model.run(x)
    np.testing.assert_array_equal(out["label"].numpy(), want["label"])
    np.testing.assert_allclose(out["probabilities"].numpy(), want["probabilities"], rtol=1e-5)
    np.testing.assert_allclose(
        model.run_bound(x)["probabilities"], want["probabilities"], rtol=1e-5
    )


def test_torch_cuda_tensors_in_and_out_without_copies(dbn_model):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this torch has no CUDA")
    path, x = dbn_model
    model = Model(path, device="cuda", use_tf32=False)
    xt = torch.from_numpy(np.ascontiguousarray(x[:512], dtype=np.float32)).cuda()
    torch.cuda.synchronize()  # torch's copy is on its own stream: done before onnxruntime reads
    bound = model.bind(xt, keep_on_device=True)
    assert bound.input.data_ptr() == xt.data_ptr()
    out = torch.from_dlpack(bound.run()["probabilities"])
    assert out.is_cuda and out.data_ptr() == bound.outputs["probabilities"].data_ptr()
    want = Model(path, device="cpu").run(x[:512])["probabilities"]
    np.testing.assert_allclose(out.cpu().numpy(), want, rtol=1e-4, atol=1e-5)


def test_chunked_batch_beyond_65535(dbn_model):
    path, x = dbn_model
    big = np.tile(x, (40, 1))[:70000]
    model = Model(path, device="cuda", chunk_size=16384)
    out = model.run(big)
    assert out["probabilities"].shape == (70000, 10)
    np.testing.assert_array_equal(out["label"][: len(x)], model.run(x)["label"])


def test_throughput_report(dbn_model):
    """Not a pass/fail timing: prints samples/s for the record."""
    path, x = dbn_model
    batch = np.tile(x, (3, 1))[:4096]
    for device in ("cpu", "cuda"):
        model = Model(path, device=device, chunk_size=4096)
        model.run(batch)
        start, runs = time.perf_counter(), 0
        while time.perf_counter() - start < 2.0:
            model.run(batch)
            runs += 1
        rate = runs * len(batch) / (time.perf_counter() - start)
        print(f"\ndbn 784-500-500-2000-10, batch 4096, {device}: {rate:,.0f} samples/s")
