"""Deploy-side runtime for nnspec models: NumPy and onnxruntime only, never nnspec itself."""

from .errors import DeviceError, RuntimeModelError
from .model import Model, Prediction

__version__ = "0.1.0"
__all__ = ["DeviceError", "Model", "Prediction", "RuntimeModelError"]
