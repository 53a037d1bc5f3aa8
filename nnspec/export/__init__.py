"""Network -> ONNX. The only package of nnspec that imports ``onnx``."""

from .to_onnx import TARGET_OPSET, check, to_onnx

__all__ = ["TARGET_OPSET", "check", "to_onnx"]
