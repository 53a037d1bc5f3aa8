"""Parity: the exported graph in onnxruntime against the NumPy network it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ..errors import ParityError
from ..nn.network import Network

RTOL, ATOL = 1e-4, 1e-5


def compare(got: np.ndarray, want: np.ndarray) -> dict[str, float]:
    """Max absolute error, max relative error (where |want| > ATOL) and the worst ratio of
    |got - want| to the allowed ATOL + RTOL |want| (<= 1 passes, as numpy.allclose)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want)
    big = np.abs(want) > ATOL
    return {
        "max_abs_err": float(err.max(initial=0.0)),
        "max_rel_err": float((err[big] / np.abs(want[big])).max(initial=0.0)),
        "worst_ratio": float((err / (ATOL + RTOL * np.abs(want))).max(initial=0.0)),
    }


def check_parity(network: Network, model: onnx.ModelProto | Path, x: np.ndarray) -> dict:
    """Run ``model`` (a message, or the path of a model with external data) on the CPU
    provider for raw inputs ``x``; raise if outside rtol/atol.

    ``x``: (samples, *input shape), or for a tabular model its raw columns (a dict: name ->
    (samples,) column, NaN or "" for missing values), which the graph imputes and encodes
    itself and the network's encoder does in NumPy."""
    from nnspec_runtime import Model

    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    runtime = Model(source, device="cpu")
    got = runtime.run(x)
    if isinstance(x, dict):
        want = network.predict(x)
        x = next(iter(x.values()))  # for its length below
    else:
        want = network.predict(np.asarray(x, np.float32))
    key = "prediction" if network.task == "regression" else "probabilities"
    result = compare(got[key], want[key])
    result.update(
        {"provider": runtime.provider, "samples": int(len(x)), "rtol": RTOL, "atol": ATOL}
    )
    if result["worst_ratio"] > 1:
        raise ParityError(
            f"the exported model does not match the NumPy network on {len(x)} samples: "
            f"max abs error {result['max_abs_err']:.3g}, max rel error "
            f"{result['max_rel_err']:.3g} (allowed rtol {RTOL}, atol {ATOL}); no model written"
        )
    return result
