"""Network -> ONNX. The only package of nnspec that imports ``onnx``.

(Named ``exporter`` so that it never shadows the public function ``nnspec.export``.)
"""

from onnx import ModelProto  # what to_onnx returns; named here so callers need not import onnx

from .lower import add_metadata, check_onnx_model, to_onnx
from .save import write

__all__ = ["ModelProto", "add_metadata", "check_onnx_model", "to_onnx", "write"]
