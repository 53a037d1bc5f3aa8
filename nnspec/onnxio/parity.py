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
    if not (np.isfinite(got).all() and np.isfinite(want).all()):
        # NaN > 1 is false: a comparison with a NaN in it must fail, not pass. The ratio is
        # infinite, so the check fails and the record stays valid JSON-safe numbers.
        return {
            "max_abs_err": float("inf"),
            "max_rel_err": float("inf"),
            "worst_ratio": float("inf"),
        }
    err = np.abs(got - want)
    big = np.abs(want) > ATOL
    return {
        "max_abs_err": float(err.max(initial=0.0)),
        "max_rel_err": float((err[big] / np.abs(want[big])).max(initial=0.0)),
        "worst_ratio": float((err / (ATOL + RTOL * np.abs(want))).max(initial=0.0)),
    }


def check_finite_weights(network: Network, where: str) -> None:
    """Refuse to export a network with a NaN or inf in its weights, running statistics or
    standardization: such a model predicts NaN (or a wrong label) for every input."""
    arrays = dict(network.arrays())
    for name, value in network.statistics().items():
        arrays[f"preprocess {name}"] = value
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise ParityError(
                f"{where}: {name} has a NaN or inf at index {index}; a non-finite model is "
                "never written"
            )


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
    finite = bool(np.isfinite(got[key]).all() and np.isfinite(want[key]).all())
    if not finite:
        which = "onnxruntime" if not np.isfinite(got[key]).all() else "the NumPy network"
        raise ParityError(
            f"{which} computed a NaN or inf on {len(x)} samples: the weights or the "
            "standardization are not finite; no model written"
        )
    if not result["worst_ratio"] <= 1:
        raise ParityError(
            f"the exported model does not match the NumPy network on {len(x)} samples: "
            f"max abs error {result['max_abs_err']:.3g}, max rel error "
            f"{result['max_rel_err']:.3g} (allowed rtol {RTOL}, atol {ATOL}); no model written"
        )
    return result
