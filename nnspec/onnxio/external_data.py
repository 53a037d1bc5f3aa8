"""ONNX external data: tensors streamed to a ``<model>.data`` file beside the model.

Protobuf cannot hold a message over 2 GB, nor one tensor that large, so the lowering of a
large network (``lower.to_onnx(..., data_file=...)``) writes each initializer here and keeps
only a reference (location, offset, length) in the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

ALIGN = 4096  # tensors start on page boundaries, so runtimes can memory-map them


def write_tensors(tensors: list[tuple[str, np.ndarray]], data_file: Path) -> list[TensorProto]:
    """Append each array to ``data_file``; TensorProtos that point into it by relative name."""
    protos = []
    with open(data_file, "wb") as f:
        for name, array in tensors:
            offset = -f.tell() % ALIGN + f.tell()
            f.seek(offset)
            # ONNX stores tensors little-endian, in C order.
            f.write(memoryview(np.ascontiguousarray(array, array.dtype.newbyteorder("<"))))
            t = TensorProto()
            t.name = name
            t.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
            t.dims.extend(array.shape)
            # onnx's set_external_data wants the bytes in the message first, which a tensor
            # over 2 GB cannot be; the entries are three strings.
            for key, value in (
                ("location", data_file.name),
                ("offset", str(offset)),
                ("length", str(array.nbytes)),
            ):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            t.data_location = TensorProto.EXTERNAL
            protos.append(t)
        f.flush()
        os.fsync(f.fileno())
    return protos
