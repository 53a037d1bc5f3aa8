"""Deploy-side runtime for nnspec models: NumPy and onnxruntime only, never nnspec itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .errors import DeviceError, OnnxRuntimeMissing, RuntimeModelError

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from .model import Model, Prediction

__all__ = [
    "DeviceError",
    "Model",
    "OnnxRuntimeMissing",
    "Prediction",
    "RuntimeModelError",
    "__version__",
]


def __getattr__(name: str) -> object:
    # Model and Prediction load on first use (PEP 562), so that a program that only needs the
    # error classes (the nnspec command line, on every call) does not import the rest.
    if name in ("Model", "Prediction"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
