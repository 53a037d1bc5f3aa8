"""Network -> ONNX. The only package of nnspec that imports ``onnx``.

(Named ``exporter`` so that it never shadows the public function ``nnspec.export``.)
"""

from .external import write
from .to_onnx import add_metadata, check, to_onnx

__all__ = ["add_metadata", "check", "to_onnx", "write"]
