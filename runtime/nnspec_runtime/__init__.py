"""Deploy-side runtime for nnspec models: NumPy and onnxruntime only, never nnspec itself."""

from .errors import DeviceError, RuntimeModelError

__version__ = "0.1.0"
__all__ = ["DeviceError", "Model", "Prediction", "RuntimeModelError"]


def __getattr__(name: str):
    # Model and Prediction load on first use (PEP 562), so that a program that only needs the
    # error classes (the nnspec command line, on every call) does not import the rest.
    if name in ("Model", "Prediction"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
