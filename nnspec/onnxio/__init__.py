"""Network -> ONNX. The only package of nnspec that imports ``onnx``.

(Named ``exporter`` so that it never shadows the public function ``nnspec.export``.)
"""

from .lower import add_metadata, check, to_onnx
from .save import write

__all__ = ["add_metadata", "check", "to_onnx", "write"]
