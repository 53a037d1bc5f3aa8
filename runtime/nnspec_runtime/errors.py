"""Errors of the deploy-side runtime (it never imports nnspec, so it has its own)."""


class RuntimeModelError(ValueError):
    """The model file cannot be loaded, or an input does not fit the model."""


class DeviceError(RuntimeError):
    """The requested device (CUDA) cannot be used."""
