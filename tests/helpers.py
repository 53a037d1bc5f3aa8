"""Small spec builders and environment probes shared by the tests."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
from pathlib import Path

import nnspec

CUDA = "CUDAExecutionProvider"


def mlp_spec(
    hidden: str = "tanh",
    output: str = "softmax",
    loss: str = "cross_entropy",
    task: str = "classification",
    features: int = 4,
    units: int = 3,
    extra: str = "",
    dtype: str = "float64",
) -> nnspec.Spec:
    """A small data-free spec: features -> 5 hidden -> units."""
    classes = f"classes: [{', '.join(f'c{i}' for i in range(max(units, 2)))}]\n"
    text = (
        "spec_version: 1\n"
        "name: t\n"
        f"task: {task}\n"
        f"input: {{features: {features}}}\n"
        + (classes if task == "classification" else "")
        + "layers:\n"
        f"  - {{kind: dense, units: 5, activation: {hidden}}}\n"
        f"  - {{kind: dense, units: {units}, activation: {output}}}\n"
        f"loss: {loss}\n"
        f"train: {{dtype: {dtype}, seed: 3{extra}}}\n"
    )
    return nnspec.load_spec(text)


def rewrite_checkpoint_arrays(directory: Path, change) -> None:
    """Change a checkpoint's arrays (``change(arrays)``, a dict edited in place) and record the
    new NPZ's sha256 in its checkpoint.json, as a valid writer would: what tampering looks like
    once the hash is no obstacle."""
    import numpy as np

    meta = json.loads((directory / "checkpoint.json").read_text())
    with np.load(directory / meta["npz"], allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(directory / meta["npz"], **arrays)
    meta["npz_sha256"] = hashlib.sha256((directory / meta["npz"]).read_bytes()).hexdigest()
    (directory / "checkpoint.json").write_text(json.dumps(meta))


@functools.cache
def cuda_state() -> str:
    """What this onnxruntime does with CUDA: "none" (a CPU build: no CUDA provider),
    "broken" (onnxruntime-gpu, but a session asked for CUDA falls back to the CPU: no GPU,
    driver or CUDA libraries) or "works"."""
    import onnxruntime
    from onnx import TensorProto, helper

    if CUDA not in onnxruntime.get_available_providers():
        return "none"
    if hasattr(onnxruntime, "preload_dlls"):
        with contextlib.redirect_stdout(io.StringIO()):  # it prints what it cannot load
            onnxruntime.preload_dlls()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=[CUDA, "CPUExecutionProvider"]
    )
    return "works" if session.get_providers()[0] == CUDA else "broken"


# What Model(..., device="cuda") says where CUDA cannot be had: a CPU build has no provider;
# onnxruntime-gpu without a GPU makes a CPU session, which is refused.
NO_CUDA_MESSAGE = {
    "none": "no CUDA provider",
    "broken": "onnxruntime made a session on CPUExecutionProvider",
}
