"""ONNX in and out, and the only package of nnspec that imports ``onnx``: lowering a Network
to a graph (lower.py), writing it atomically with external data when large (save.py), reading
untrusted files (load.py), a model back into a Network (read.py), ``nnspec inspect``, weights
for ``init.from`` and the onnxruntime parity check.

(Not named ``export``, which would shadow the public function ``nnspec.export``.)
"""

from onnx import ModelProto  # what to_onnx returns; named here so callers need not import onnx

from .lower import add_metadata, check_onnx_model, to_onnx
from .save import write

__all__ = ["ModelProto", "add_metadata", "check_onnx_model", "to_onnx", "write"]
