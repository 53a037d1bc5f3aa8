"""The runtime on a real GPU. Skipped where onnxruntime has no CUDA provider (CI, laptops).

On the lent GPU machine: install onnxruntime-gpu (see ../shared/gpu/README.md), then
``pytest -m gpu tests/test_gpu.py -s``.
"""

from __future__ import annotations

import time

import numpy as np
import onnxruntime
import pytest
from conftest import ROOT

import nnspec
from nnspec import pipeline
from nnspec_runtime import Model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        "CUDAExecutionProvider" not in onnxruntime.get_available_providers(),
        reason="onnxruntime has no CUDA provider here",
    ),
]


@pytest.fixture(scope="module")
def dbn_model(tmp_path_factory):
    spec = nnspec.load_spec(ROOT / "specs" / "dbn.yaml")
    network = nnspec.build(spec)
    dataset = pipeline.load_data(spec)
    network.fit_preprocess(pipeline.split(spec, dataset).train.x)
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
