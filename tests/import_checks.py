"""Shared by the import tests: run a source model and a compiled spec in onnxruntime on the
same seeded inputs, independently of the importer's own check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

FIXTURES = Path(__file__).resolve().parent / "onnxio" / "fixtures"


def session(model) -> ort.InferenceSession:
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def run(model, x: np.ndarray) -> dict[str, np.ndarray]:
    s = session(model)
    name = s.get_inputs()[0].name
    feed = x.astype(np.float64) if "double" in s.get_inputs()[0].type else x
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {name: feed}), strict=True))


def seeded_inputs(model_path: Path, batch: int = 7, seed: int = 123) -> np.ndarray:
    """Inputs of the source model's shape (its own batch when that is fixed)."""
    m = onnx.load(str(model_path), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    x = next(i for i in m.graph.input if i.name not in inits)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in x.type.tensor_type.shape.dim]
    if dims[0]:
        batch = dims[0]
    return np.random.default_rng(seed).standard_normal((batch, *dims[1:])).astype(np.float32)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def max_errors(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    err = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
    big = np.abs(want) > 1e-5
    return float(err.max()), float((err[big] / np.abs(want[big])).max(initial=0.0))
