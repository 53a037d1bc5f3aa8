"""Find a serialized ONNX model's external-data references by reading its protobuf wire format.

One job: list the tensors of a model (``bytes`` or an ``mmap`` of a ``.onnx`` file) that keep
their data in an external file, as ``(tensor name, location, offset, length)`` tuples, for the
external-data guard (``external.py``) to check before onnxruntime opens anything. Written by
hand because the runtime depends on NumPy and onnxruntime only, never on onnx or protobuf: the
few fields needed are decoded from the wire format itself (varints and length-delimited fields;
fixed-width fields and groups skipped), following the message types on the paths from a
ModelProto to each TensorProto (graphs, nodes, attributes, sparse tensors, functions, training
info). A file that is not wire format (truncated, damaged, not ONNX) raises ``Corrupt``.
"""

from __future__ import annotations

# Fields that hold messages, for each message type on the paths to a TensorProto.
_MESSAGES = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node", 11: "attribute"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_MAX_DEPTH = 64


class Corrupt(Exception):
    """Bytes that are not protobuf wire format (a truncated or damaged file)."""


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise Corrupt(f"a number runs past the end of its message at byte {pos}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise Corrupt(f"a number longer than 10 bytes at byte {pos}")


def _fields(buf, pos: int, end: int):
    """(field number, wire type, value) of each field in buf[pos:end]: an int for numbers, a
    (start, end) pair for length-delimited fields; groups are skipped."""
    while pos < end:
        at = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise Corrupt(f"field number 0 at byte {at}")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1 or wire == 5:
            value, pos = None, pos + (8 if wire == 1 else 4)
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            value, pos = (pos, pos + size), pos + size
        elif wire == 3:  # a group: skip to its end marker
            depth = 1
            while depth:
                if pos >= end:
                    raise Corrupt(f"a group opened at byte {at} is never closed")
                key, pos = _varint(buf, pos, end)
                if key & 7 == 3:
                    depth += 1
                elif key & 7 == 4:
                    depth -= 1
                elif key & 7 == 0:
                    _, pos = _varint(buf, pos, end)
                elif key & 7 in (1, 5):
                    pos += 8 if key & 7 == 1 else 4
                elif key & 7 == 2:
                    size, pos = _varint(buf, pos, end)
                    pos += size
                else:
                    raise Corrupt(f"unknown wire type {key & 7} at byte {pos}")
            value = None
        else:
            raise Corrupt(f"unknown wire type {wire} at byte {at}")
        if pos > end:
            raise Corrupt(f"a field at byte {at} runs {pos - end} bytes past the end")
        yield number, wire, value


def _tensor_refs(buf, start: int, end: int, found: list) -> None:
    name, location, external, offset, length = "", None, False, 0, None
    for number, wire, value in _fields(buf, start, end):
        if number == _TENSOR_NAME and wire == 2:
            name = bytes(buf[value[0] : value[1]]).decode("utf-8", "replace")
        elif number == _TENSOR_DATA_LOCATION and wire == 0:
            external = value == _EXTERNAL
        elif number == _TENSOR_EXTERNAL_DATA and wire == 2:
            key = entry = ""
            for n, w, v in _fields(buf, *value):
                if w == 2 and n in (1, 2):
                    text = bytes(buf[v[0] : v[1]]).decode("utf-8", "replace")
                    key, entry = (text, entry) if n == 1 else (key, text)
            if key == "location":
                location = entry
            elif key in ("offset", "length"):
                try:
                    number_ = int(entry)
                except ValueError:
                    raise Corrupt(f"tensor {name!r}: external data {key} {entry!r}") from None
                offset, length = (number_, length) if key == "offset" else (offset, number_)
    if external:
        found.append((name, location, offset, length))


def _walk(buf, start: int, end: int, kind: str, found: list, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise Corrupt(f"messages nested over {_MAX_DEPTH} deep")
    if kind == "tensor":
        _tensor_refs(buf, start, end, found)
        return
    children = _MESSAGES[kind]
    for number, wire, value in _fields(buf, start, end):
        if wire == 2 and number in children:
            _walk(buf, *value, children[number], found, depth + 1)


def external_refs(buf) -> list[tuple[str, str | None, int, int | None]]:
    """(tensor name, location, offset, length) of each tensor of the serialized model ``buf``
    (bytes or an mmap) that keeps its data in an external file, in file order: ``location`` is
    None where the tensor names no file, ``offset`` 0 and ``length`` None where the tensor does
    not give them. ``Corrupt`` if ``buf`` is not protobuf wire format, or holds no graph."""
    found: list = []
    graphs = 0
    for number, wire, value in _fields(buf, 0, len(buf)):
        if wire == 2 and number in _MESSAGES["model"]:
            graphs += number == 7
            _walk(buf, *value, _MESSAGES["model"][number], found, 1)
    if not graphs:
        raise Corrupt("it holds no graph")
    return found
