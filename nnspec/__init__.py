"""nnspec: a declarative model-spec compiler. YAML spec -> NumPy backprop training -> ONNX.

The public API::

    spec = nnspec.load_spec("specs/iris.yaml")
    network = nnspec.build_network(spec, seed=0)    # untrained; .parameters(), .forward(x)
    loss, grads = network.loss_and_gradients(x, y)
    result = nnspec.train(spec)                     # a TrainResult: .network, .history, .metrics
    result = nnspec.train(spec, x, y, test=(xt, yt))  # arrays, DataFrames, pyarrow Tables
    model = nnspec.export(result, "iris.onnx")      # parity checked, metrics in the metadata
    nnspec.compile(spec, "untrained.onnx")          # nnspec compile: seeded, untrained
    nnspec.import_onnx("torch.onnx", "net.yaml")    # nnspec import: spec + net.weights.npz
    nnspec.run_sweep(spec, "results/", workers=2)   # nnspec sweep (spec with a sweep: block)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import DataError, ModelError, NnspecError, SpecError

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from .nn.network import Network
    from .pipeline import (
        Compiled,
        TrainResult,
        build_network,
        compile,
        export,
        resolve,
        train,
    )
    from .spec.models import Spec, load_spec
    from .training.state import History

# Loaded on first use (PEP 562): `nnspec validate` needs the spec language, not the trainer,
# and a command-line tool's start-up time is paid on every call.
_LAZY = {
    "Network": "nn.network",
    "Compiled": "pipeline",
    "TrainResult": "pipeline",
    "build_network": "pipeline",
    "compile": "pipeline",
    "export": "pipeline",
    "import_onnx": "pipeline",
    "resolve": "pipeline",
    "train": "pipeline",
    "Spec": "spec.models",
    "load_spec": "spec.models",
    "History": "training.state",
    "run_sweep": "engines.sweep",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Compiled",
    "DataError",
    "History",
    "ModelError",
    "Network",
    "NnspecError",
    "Spec",
    "SpecError",
    "TrainResult",
    "__version__",
    "build_network",
    "import_onnx",
    "compile",
    "export",
    "load_spec",
    "resolve",
    "run_sweep",
    "train",
]
