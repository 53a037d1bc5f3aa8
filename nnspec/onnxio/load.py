"""Reading an .onnx file someone else may have written: untrusted bytes in, a parsed model or a
ModelError that names the file out. Used by ``nnspec inspect``, ``init.from`` and reading an
nnspec model back.

The file goes through ``nnspec.untrusted``: a regular file only (``/dev/zero`` or a FIFO is
refused before it is opened), at most protobuf's 2 GB. Weights in external data are read only
through ``initializer_arrays``, after the runtime's external-data guard has checked where
they point (inside the model's directory, regular files, long enough), and every array is
checked: real numbers, finite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .. import untrusted
from ..errors import ModelError

# Protobuf cannot hold a message over 2 GB: a larger .onnx file is not a model.
MAX_MODEL_BYTES = 2**31


def load_onnx(path: Path) -> onnx.ModelProto:
    """The model at ``path`` without its external data, or a ModelError saying why not."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a directory; expected an .onnx file")
    if not path.exists() and not path.is_symlink():
        raise ModelError(f"{path}: no such model file")
    data = untrusted.read_bytes(path, "model file (.onnx)", ModelError, limit=MAX_MODEL_BYTES)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises DecodeError and others for corrupt bytes
        raise ModelError(f"{path}: not a readable ONNX model: {e}") from None
    if not model.HasField("graph") or not model.graph.output:
        # Protobuf parses an empty (or unrelated) file as an empty message without complaint.
        raise ModelError(f"{path}: not an ONNX model (no graph with outputs)")
    return model


def check_external_data(path: Path, model: onnx.ModelProto) -> None:
    """The runtime's guard on the model's external-data locations (outside the model's
    directory, not a regular file, missing or too short: a ModelError), before any is read."""
    from nnspec_runtime import RuntimeModelError
    from nnspec_runtime.external import check_external

    refs = []
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in t.external_data}
            try:
                offset = int(entries.get("offset", "0"))
                length = int(entries["length"]) if "length" in entries else None
            except ValueError:
                raise ModelError(
                    f"{path}: tensor {t.name!r}: external data offset or length is not a number"
                ) from None
            refs.append((t.name, entries.get("location"), offset, length))
    try:
        check_external(str(path), path.parent, refs)
    except RuntimeModelError as e:
        raise ModelError(str(e)) from None


def initializer_array(path: Path, tensor: onnx.TensorProto) -> np.ndarray:
    """One initializer as a NumPy array (its external data read from beside the model, which
    ``check_external_data`` must have cleared), checked to be finite real numbers."""
    try:
        a = numpy_helper.to_array(tensor, str(path.parent))
    except Exception as e:  # noqa: BLE001  onnx raises several types for a bad tensor
        raise ModelError(f"{path}: cannot read the weight {tensor.name}: {e}") from None
    if a.dtype.kind not in "biuf":
        raise ModelError(
            f"{path}: the weight {tensor.name} holds {a.dtype} values; expected numbers"
        )
    untrusted.check_finite(a, f"{path}: the weight {tensor.name}", ModelError, float32=False)
    return a
