"""nnspec: a declarative model-spec compiler. YAML spec -> NumPy backprop training -> ONNX.

The public API::

    spec = nnspec.load_spec("specs/iris.yaml")
    network = nnspec.build(spec, seed=0)            # untrained; .parameters(), .forward(x)
    loss, grads = network.loss_and_gradients(x, y)
    network, history = nnspec.train(spec)
    model = nnspec.export(network, "iris.onnx")
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .errors import DataError, ModelError, NnspecError, SpecError

# Loaded on first use (PEP 562): `nnspec validate` needs the spec language, not the trainer,
# and a command-line tool's start-up time is paid on every call.
_LAZY = {
    "Network": "nn.network",
    "build": "pipeline",
    "export": "pipeline",
    "resolve": "pipeline",
    "train": "pipeline",
    "Spec": "spec.models",
    "load_spec": "spec.models",
    "History": "training.state",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "DataError",
    "History",
    "ModelError",
    "Network",
    "NnspecError",
    "Spec",
    "SpecError",
    "__version__",
    "build",
    "export",
    "load_spec",
    "resolve",
    "train",
]
