"""Writing models, with ONNX external data for those over protobuf's 2 GB.

Protobuf cannot hold a message over 2 GB, and cannot even hold one tensor that large, so such
a model never exists as one message: its tensors are streamed to ``<name>.data`` and the model
refers to them by that relative name, so the two files move together. Both are written under
temporary names in the target directory; then any old model is removed and the data and the
model are renamed into place, in that order, so a crash leaves no model or the new pair, never
an old model with new weights.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx

from .. import atomic
from . import lower  # the module, so that the 2 GB limit is read at call time (tests lower it)


def write(
    network,
    path: str | Path,
    opset: int | None = None,
    finalize: Callable[[onnx.ModelProto, Path | None], None] | None = None,
    metadata: dict[str, object] | None = None,
) -> onnx.ModelProto:
    """Export ``network`` to ``path`` atomically; over 2 GB of weights, with ``<path>.data``.

    ``finalize(model, staged)`` runs before anything is in place: ``staged`` is the written
    model's temporary path when it has external data (None otherwise), so a check can run the
    real files; it may add metadata, and an exception from it leaves nothing written. Returns
    the model (for a large one, the message whose tensors point into the data file).
    ``metadata`` goes to ``to_onnx``.
    """
    path = Path(path)
    atomic.check_writable(path)
    float32_bytes = 4 * sum(a.size for a in network.arrays().values())
    if float32_bytes + lower.MARGIN <= lower.MAX_PROTOBUF:
        model = lower.to_onnx(network, opset, metadata=metadata)
        if finalize:
            finalize(model, None)
        if atomic.is_stream(path):  # /dev/null, a FIFO: written through, nothing to lock
            atomic.write_bytes(path, model.SerializeToString())
        else:
            with atomic.export_lock(path):
                atomic.write_bytes(path, model.SerializeToString())
        return model
    if atomic.is_stream(path):
        raise atomic.OutputError(
            f"{path}: a model over 2 GB is two files (the model and {path.name}.data beside "
            "it); expected a path in a directory, not a stream or a device"
        )
    with atomic.export_lock(path):
        return _write_external(network, path, opset, finalize, metadata)


def _write_external(network, path: Path, opset, finalize, metadata) -> onnx.ModelProto:
    data_name = f"{path.name}.data"
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
            staged = Path(tmp) / path.name
            model = lower.to_onnx(
                network, opset, data_file=Path(tmp) / data_name, metadata=metadata
            )
            atomic.write_bytes(staged, model.SerializeToString())
            lower.check_onnx_model(str(staged))
            if finalize:
                finalize(model, staged)
                atomic.write_bytes(staged, model.SerializeToString())
            # The old model goes first: a kill between these steps leaves no model (and a data
            # file the next write replaces), never the old model reading the new weights.
            path.unlink(missing_ok=True)
            os.replace(Path(tmp) / data_name, path.parent / data_name)
            os.replace(staged, path)
            atomic.sync_directory(path.parent)
    except OSError as e:
        raise atomic.OutputError(f"{path}: cannot write: {e.strerror}") from None
    return model
