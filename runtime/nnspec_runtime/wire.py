"""Read a serialized ONNX model's protobuf wire format exactly as protobuf does, without onnx.

One job: from a model (``bytes`` or an ``mmap`` of a ``.onnx`` file), list the tensors that keep
their data in an external file, as ``(tensor name, location, offset, length)`` tuples, for the
external-data guard (``external.py``) to check before onnxruntime opens anything; and count the
initializers that no node uses (onnxruntime takes quadratic time to drop them). Written by hand
because the runtime depends on NumPy and onnxruntime only, never on onnx or protobuf.

A guard that reads a field differently from protobuf can be bypassed, so this reads what
protobuf reads, following onnx.proto's schema (``_SCHEMA``, generated from onnx's descriptors)
through every message type, not only those on the way to a tensor:

- tags are varints of at most 5 bytes and 32 bits (protobuf's ``upb``, which onnx uses, refuses
  longer ones; onnxruntime's C++ protobuf truncates them, so they are refused here: a tag that
  the two parsers would read differently cannot be classified); field number 0, wire types 6
  and 7, and an end-group tag outside its group are malformed, as they are to protobuf;
- enums are int32: a varint is truncated to its low 32 bits (``data_location`` 2**32 + 1 is
  EXTERNAL to protobuf); a value the enum does not define leaves the field as it was (proto2);
- a known field with another wire type than its own is an unknown field, skipped; repeated
  numeric fields are read packed (wire type 2) and unpacked; packed payloads are checked;
- unknown fields are skipped by wire type (groups parsed to their matching end);
- the last value of a singular field wins, nested messages are parsed to 100 levels.

A file that protobuf would not parse (truncated, damaged, not ONNX) raises ``Corrupt``;
``tests/runtime/test_wire_fuzz.py`` mutates models byte by byte and checks the verdict against
onnx's own parser for every mutation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# onnx.proto (onnx 1.23), message by message: field number -> kind. "*" marks a repeated field;
# v: a varint (ints, bools), e: an enum, f4 / f8: 32- / 64-bit fixed width, s: bytes or a
# string; anything else names a message type. Regenerate from onnx.ModelProto.DESCRIPTOR.
_SCHEMA = {
    "ModelProto": {
        1: "v",
        2: "s",
        3: "s",
        4: "s",
        5: "v",
        6: "s",
        7: "GraphProto",
        8: "*OperatorSetIdProto",
        14: "*StringStringEntryProto",
        20: "*TrainingInfoProto",
        25: "*FunctionProto",
        26: "*DeviceConfigurationProto",
    },
    "OperatorSetIdProto": {1: "s", 2: "v"},
    "GraphProto": {
        1: "*NodeProto",
        2: "s",
        5: "*TensorProto",
        10: "s",
        11: "*ValueInfoProto",
        12: "*ValueInfoProto",
        13: "*ValueInfoProto",
        14: "*TensorAnnotation",
        15: "*SparseTensorProto",
        16: "*StringStringEntryProto",
    },
    "NodeProto": {
        1: "*s",
        2: "*s",
        3: "s",
        4: "s",
        5: "*AttributeProto",
        6: "s",
        7: "s",
        8: "s",
        9: "*StringStringEntryProto",
        10: "*NodeDeviceConfigurationProto",
    },
    "AttributeProto": {
        1: "s",
        2: "f4",
        3: "v",
        4: "s",
        5: "TensorProto",
        6: "GraphProto",
        7: "*f4",
        8: "*v",
        9: "*s",
        10: "*TensorProto",
        11: "*GraphProto",
        13: "s",
        14: "TypeProto",
        15: "*TypeProto",
        20: "e",
        21: "s",
        22: "SparseTensorProto",
        23: "*SparseTensorProto",
    },
    "TensorProto": {
        1: "*v",
        2: "v",
        3: "Segment",
        4: "*f4",
        5: "*v",
        6: "*s",
        7: "*v",
        8: "s",
        9: "s",
        10: "*f8",
        11: "*v",
        12: "s",
        13: "*StringStringEntryProto",
        14: "e",
        16: "*StringStringEntryProto",
    },
    "Segment": {1: "v", 2: "v"},
    "StringStringEntryProto": {1: "s", 2: "s"},
    "SparseTensorProto": {1: "TensorProto", 2: "TensorProto", 3: "*v"},
    "TypeProto": {
        1: "Tensor",
        4: "Sequence",
        5: "Map",
        6: "s",
        7: "Opaque",
        8: "SparseTensor",
        9: "Optional",
    },
    "Tensor": {1: "v", 2: "TensorShapeProto"},
    "TensorShapeProto": {1: "*Dimension"},
    "Dimension": {1: "v", 2: "s", 3: "s"},
    "Sequence": {1: "TypeProto"},
    "Map": {1: "v", 2: "TypeProto"},
    "Optional": {1: "TypeProto"},
    "SparseTensor": {1: "v", 2: "TensorShapeProto"},
    "Opaque": {1: "s", 2: "s"},
    "NodeDeviceConfigurationProto": {1: "s", 2: "*ShardingSpecProto", 3: "v"},
    "ShardingSpecProto": {1: "s", 2: "*v", 3: "*IntIntListEntryProto", 4: "*ShardedDimProto"},
    "IntIntListEntryProto": {1: "v", 2: "*v"},
    "ShardedDimProto": {1: "v", 2: "*SimpleShardedDimProto"},
    "SimpleShardedDimProto": {1: "v", 2: "s", 3: "v"},
    "ValueInfoProto": {1: "s", 2: "TypeProto", 3: "s", 4: "*StringStringEntryProto"},
    "TensorAnnotation": {1: "s", 2: "*StringStringEntryProto"},
    "TrainingInfoProto": {
        1: "GraphProto",
        2: "GraphProto",
        3: "*StringStringEntryProto",
        4: "*StringStringEntryProto",
    },
    "FunctionProto": {
        1: "s",
        4: "*s",
        5: "*s",
        6: "*s",
        7: "*NodeProto",
        8: "s",
        9: "*OperatorSetIdProto",
        10: "s",
        11: "*AttributeProto",
        12: "*ValueInfoProto",
        13: "s",
        14: "*StringStringEntryProto",
    },
    "DeviceConfigurationProto": {1: "s", 2: "v", 3: "*s"},
}
_WIRE = {"v": 0, "e": 0, "f8": 1, "f4": 5, "s": 2}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_DATA_LOCATIONS = (0, 1)  # DEFAULT, EXTERNAL: the values the enum defines
_MAX_DEPTH = 100  # protobuf's default recursion limit


class Corrupt(Exception):
    """Bytes that protobuf would not parse as an ONNX model (truncated, damaged, not ONNX)."""


@dataclass
class WireModel:
    """What the guard needs from a model: its external tensors and its unused initializers."""

    refs: list = field(default_factory=list)  # (name, location, offset, length)
    initializers: list = field(default_factory=list)  # names (bytes) in the graphs
    used: set = field(default_factory=set)  # names that nodes take and graphs output
    graphs: int = 0  # the model's graph fields

    @property
    def unused_initializers(self) -> int:
        return sum(1 for name in self.initializers if name not in self.used)


def _varint(buf, pos: int, end: int, most: int = 10) -> tuple[int, int]:
    value = shift = 0
    start = pos
    while True:
        if pos >= end:
            raise Corrupt(f"a number runs past the end of its message at byte {pos}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if pos - start >= most:
            raise Corrupt(f"a number longer than {most} bytes at byte {start}")


def _tag(buf, pos: int, end: int) -> tuple[int, int, int]:
    at = pos
    key, pos = _varint(buf, pos, end, 5)
    if key > 0xFFFFFFFF:
        raise Corrupt(f"a field tag over 32 bits at byte {at}")
    number, wire = key >> 3, key & 7
    if number == 0:
        raise Corrupt(f"field number 0 at byte {at}")
    if wire > 5:
        raise Corrupt(f"unknown wire type {wire} at byte {at}")
    return number, wire, pos


def _skip(buf, pos: int, end: int, number: int, wire: int, at: int, depth: int):
    """Past one field's value: (new position, the varint or the (start, end) payload)."""
    value = None
    if wire == 0:
        value, pos = _varint(buf, pos, end)
    elif wire == 1 or wire == 5:
        pos += 8 if wire == 1 else 4
    elif wire == 2:
        size, pos = _varint(buf, pos, end)
        if size >= 0x7FFFFFFF:
            raise Corrupt(f"a field at byte {at} claims {size} bytes")
        value, pos = (pos, pos + size), pos + size
    elif wire == 3:
        pos = _group(buf, pos, end, number, at, depth + 1)
    else:  # 4: an end-group tag with no group open
        raise Corrupt(f"a group ends at byte {at} that was never opened")
    if pos > end:
        raise Corrupt(f"a field at byte {at} runs {pos - end} bytes past the end")
    return pos, value


def _group(buf, pos: int, end: int, number: int, opened: int, depth: int) -> int:
    """Past an (unknown) group to its matching end tag; its fields are checked as unknown."""
    if depth > _MAX_DEPTH:
        raise Corrupt(f"messages nested over {_MAX_DEPTH} deep")
    while True:
        if pos >= end:
            raise Corrupt(f"a group opened at byte {opened} is never closed")
        at = pos
        inner, wire, pos = _tag(buf, pos, end)
        if wire == 4:
            if inner != number:
                raise Corrupt(f"a group opened at byte {opened} is closed by another at {at}")
            return pos
        pos, _ = _skip(buf, pos, end, inner, wire, at, depth)


def _packed(buf, start: int, end: int, kind: str, at: int) -> None:
    """A packed repeated field's payload: whole fixed-width values, or whole varints."""
    n = end - start
    if kind in ("f4", "f8"):
        if n % (4 if kind == "f4" else 8):
            raise Corrupt(f"a packed field at byte {at} holds a partial number")
        return
    if n == 0:
        return
    b = np.frombuffer(buf, dtype=np.uint8, count=n, offset=start)
    ends = np.flatnonzero(b < 0x80)
    if not len(ends) or ends[-1] != n - 1:
        raise Corrupt(f"a packed field at byte {at} ends inside a number")
    if np.diff(ends, prepend=-1).max() > 10:
        raise Corrupt(f"a packed field at byte {at} holds a number longer than 10 bytes")


def _text(buf, span) -> str:
    # surrogateescape: the exact bytes of a location survive (os.fsencode gives them back).
    return bytes(buf[span[0] : span[1]]).decode("utf-8", "surrogateescape")


def _message(buf, start: int, end: int, kind: str, out: WireModel, depth: int):
    """Parse one message of type ``kind``; returns what its parent needs from it."""
    if depth > _MAX_DEPTH:
        raise Corrupt(f"messages nested over {_MAX_DEPTH} deep")
    fields = _SCHEMA[kind]
    tensor = kind == "TensorProto"
    name, location, external, offset, length = b"", None, False, 0, None
    entry = [None, None]  # StringStringEntryProto: key, value
    pos = start
    while pos < end:
        at = pos
        number, wire, pos = _tag(buf, pos, end)
        pos, value = _skip(buf, pos, end, number, wire, at, depth)
        spec = fields.get(number)
        if spec is None:
            continue
        repeated, sub = spec.startswith("*"), spec.lstrip("*")
        expected = _WIRE.get(sub, 2)
        if wire != expected:
            if repeated and wire == 2 and expected != 2:
                _packed(buf, *value, sub, at)
            continue  # a known field under another wire type: an unknown field to protobuf
        if sub not in _WIRE:
            got = _message(buf, *value, sub, out, depth + 1)
            if tensor and number == _TENSOR_EXTERNAL_DATA:
                key, text = got
                key = key if key is not None else ""
                if key == "location":
                    location = text or ""
                elif key in ("offset", "length"):
                    text = text or ""
                    if not (text.isascii() and text.isdigit()) or len(text) > 20:
                        shown = name.decode("utf-8", "replace")
                        raise Corrupt(f"tensor {shown!r}: external data {key} {text!r:.40}")
                    offset, length = (int(text), length) if key == "offset" else (offset, int(text))
            elif kind == "ModelProto" and number == 7:
                out.graphs += 1
            elif kind == "GraphProto" and number == 5:
                out.initializers.append(got)
            elif kind == "GraphProto" and number == 12 and got is not None:
                out.used.add(got)
            continue
        if tensor and number == _TENSOR_NAME:
            name = bytes(buf[value[0] : value[1]])
        elif tensor and number == _TENSOR_DATA_LOCATION:
            v = value & 0xFFFFFFFF  # an int32 enum: protobuf keeps the low 32 bits
            if v in _DATA_LOCATIONS:
                external = v == _EXTERNAL
        elif kind == "StringStringEntryProto":
            entry[number - 1] = _text(buf, value)
        elif kind == "NodeProto" and number == 1:
            out.used.add(bytes(buf[value[0] : value[1]]))
        elif kind == "ValueInfoProto" and number == 1:
            entry[0] = bytes(buf[value[0] : value[1]])
    if tensor:
        if external:
            out.refs.append((name.decode("utf-8", "replace"), location, offset, length))
        return name
    if kind == "StringStringEntryProto":
        return entry[0], entry[1]
    if kind == "ValueInfoProto":
        return entry[0]
    return None


def read_wire(buf) -> WireModel:
    """Parse the serialized model ``buf`` (bytes or an mmap) as protobuf would; ``Corrupt`` if
    protobuf would not, or if it holds no graph."""
    out = WireModel()
    # The model itself is a message like any other.
    _message(buf, 0, len(buf), "ModelProto", out, 0)
    if not out.graphs:
        raise Corrupt("it holds no graph")
    return out


def external_refs(buf) -> list[tuple[str, str | None, int, int | None]]:
    """(tensor name, location, offset, length) of each tensor of the serialized model ``buf``
    (bytes or an mmap) that keeps its data in an external file, in file order: ``location`` is
    None where the tensor names no file, ``offset`` 0 and ``length`` None where the tensor does
    not give them. ``Corrupt`` if ``buf`` is not protobuf wire format, or holds no graph."""
    return read_wire(buf).refs
