"""Reading an .onnx file someone else may have written: untrusted bytes in, a parsed model or a
ModelError that names the file out. Used by ``nnspec inspect``, ``init.from`` and reading an
nnspec model back."""

from __future__ import annotations

from pathlib import Path

import onnx

from ..errors import ModelError


def load_onnx(path: Path) -> onnx.ModelProto:
    """The model at ``path`` without its external data, or a ModelError saying why not."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a directory; expected an .onnx file") from None
    except Exception as e:  # protobuf raises DecodeError and others for corrupt bytes
        raise ModelError(f"{path}: not a readable ONNX model: {e}") from None
    if not model.HasField("graph") or not model.graph.output:
        # Protobuf parses an empty (or unrelated) file as an empty message without complaint.
        raise ModelError(f"{path}: not an ONNX model (no graph with outputs)")
    return model
