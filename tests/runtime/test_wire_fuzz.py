"""The runtime's protobuf reader against protobuf itself: byte-level mutations of valid models,
each one parsed by onnx (upb, the protobuf that onnx uses) and by ``nnspec_runtime.wire``; they
must agree on whether the bytes are a model and, when they are, on every tensor that keeps its
data in an external file (its name and location). A disagreement is a way past the external-data
guard, or a model refused for nothing.

``NNSPEC_FUZZ_EXAMPLES=20000 pytest tests/runtime/test_wire_fuzz.py`` runs a longer one.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from nnspec_runtime import Model, RuntimeModelError, wire

EXAMPLES = int(os.environ.get("NNSPEC_FUZZ_EXAMPLES", "400"))


def _external(t: TensorProto, location: str, offset: int) -> TensorProto:
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    t.external_data.add(key="offset", value=str(offset))
    t.external_data.add(key="length", value="12")
    return t


def _seed_model() -> bytes:
    """A small model with external tensors as an initializer, a node attribute and a
    subgraph's constant, plus packed dims, a shape and metadata: many kinds of field to hit."""
    w = _external(numpy_helper.from_array(np.ones(3, np.float32), "w"), "w.data", 0)
    k = _external(numpy_helper.from_array(np.ones(3, np.float32), "k"), "w.data", 64)
    inner = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value=k)],
        "inner",
        [],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [3])],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "w"], ["s"]),
            helper.make_node("If", ["b"], ["y"], then_branch=inner, else_branch=inner),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("b", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        initializer=[w, numpy_helper.from_array(np.arange(4, dtype=np.int64), "dims")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    helper.set_model_props(model, {"nnspec_class_names": '["a", "b"]'})
    return model.SerializeToString()


SEED = _seed_model()


def _onnx_view(data: bytes):
    """(external tensors as (name, location) pairs, in file order) as onnx parses ``data``, or
    None where protobuf refuses it or it has no graph."""
    try:
        model = onnx.ModelProto.FromString(data)
    except Exception:  # noqa: BLE001  protobuf's DecodeError and its kin
        return None
    if not model.HasField("graph"):
        return None
    found = []

    def visit(message) -> None:
        if isinstance(message, TensorProto) and message.data_location == TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in message.external_data}
            # upb gives a proto2 string that is not UTF-8 as its bytes; the guard decodes a
            # location with surrogateescape (its bytes survive) and a name with replacement.
            name, location = message.name, entries.get("location")
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            if isinstance(location, bytes):
                location = location.decode("utf-8", "surrogateescape")
            found.append((name, location))
        for f, value in message.ListFields():
            if f.type == f.TYPE_MESSAGE:
                for item in [value] if hasattr(value, "ListFields") else value:
                    visit(item)

    visit(model)
    return sorted(found, key=repr)


def _guard_view(data: bytes):
    try:
        refs = wire.external_refs(data)
    except wire.Corrupt:
        return None
    return sorted(((name, location) for name, location, _, _ in refs), key=repr)


def _agree(data: bytes) -> None:
    want = _onnx_view(data)
    if want is not None:
        # onnx reads external-data offsets as it likes; the guard refuses ones that are not
        # decimal digits, and that is its only allowed refusal of a model protobuf reads.
        got = _guard_view(data)
        if got is None:
            with pytest.raises(wire.Corrupt, match="external data (offset|length)"):
                wire.external_refs(data)
            return
        assert got == want, data.hex()
    else:
        assert _guard_view(data) is None, f"protobuf refuses, the guard reads: {data.hex()}"


def test_the_seed_model_agrees():
    assert (
        _onnx_view(SEED) == _guard_view(SEED) == [("k", "w.data"), ("k", "w.data"), ("w", "w.data")]
    )


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, len(SEED) - 1), st.integers(0, 255)),
    st.tuples(st.just("flip"), st.integers(0, len(SEED) - 1), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0, len(SEED)), st.binary(min_size=1, max_size=6)),
    st.tuples(st.just("delete"), st.integers(0, len(SEED) - 1), st.integers(1, 8)),
    st.tuples(
        # A varint with high bits: how 2**32 + 1 reaches an enum, or a tag, of 32 bits.
        st.just("varint"),
        st.integers(0, len(SEED) - 1),
        st.sampled_from([2**32 + 1, 2**32, 2**35 + 14, 2**63 + 1, 2**64 - 1, 1, 0]),
    ),
)


def _apply(data: bytearray, op) -> bytearray:
    kind, at, arg = op
    at = min(at, len(data))
    if kind == "set" and at < len(data):
        data[at] = arg
    elif kind == "flip" and at < len(data):
        data[at] ^= 1 << arg
    elif kind == "insert":
        data[at:at] = arg
    elif kind == "delete":
        del data[at : at + arg]
    elif kind == "varint" and at < len(data):
        # Replace the varint that starts at `at` (or the byte there) by `arg`, encoded long.
        end = at
        while end < len(data) and data[end] & 0x80:
            end += 1
        out, v = bytearray(), arg
        while True:
            out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
            v >>= 7
            if not v:
                break
        data[at : end + 1] = out
    return data


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(mutation, min_size=1, max_size=4))
def test_the_guard_reads_what_protobuf_reads(ops):
    data = bytearray(SEED)
    for op in ops:
        data = _apply(data, op)
    _agree(bytes(data))


# --- the bypass that this closes, and its class -----------------------------------------------


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def _tensor_with_location(data_location: bytes, location: str) -> bytes:
    """A TensorProto (name "w", dims 3, float) whose data_location field is the raw varint
    ``data_location`` and whose external data names ``location``."""
    entry = b"\x0a\x08location" + b"\x12" + _varint(len(location)) + location.encode()
    body = b"\x08\x03" + b"\x10\x01" + b"\x42\x01w" + b"\x6a" + _varint(len(entry)) + entry
    return body + b"\x70" + data_location


def _model_with(tensor: bytes) -> bytes:
    graph = onnx.helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    raw = graph.SerializeToString() + b"\x2a" + _varint(len(tensor)) + tensor
    model = helper.make_model(
        onnx.GraphProto(), opset_imports=[helper.make_opsetid("", 18)], ir_version=8
    )
    model.ClearField("graph")
    return model.SerializeToString() + b"\x3a" + _varint(len(raw)) + raw


@pytest.mark.parametrize("value", [1, 2**32 + 1, 2**64 - 2**32 + 1, 2**63 + 2**32 + 1])
def test_an_enum_over_32_bits_is_external_to_both_parsers(tmp_path, value):
    """data_location 2**32 + 1 is EXTERNAL to protobuf (it keeps the low 32 bits): the guard
    reads it so, checks the location, and refuses one outside the model's directory."""
    data = _model_with(_tensor_with_location(_varint(value), "../secret/key"))
    parsed = onnx.ModelProto.FromString(data)
    assert parsed.graph.initializer[0].data_location == TensorProto.EXTERNAL
    assert wire.external_refs(data) == [("w", "../secret/key", 0, None)]
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "m.onnx").write_bytes(data)
    with pytest.raises(RuntimeModelError, match="outside the model's directory"):
        Model(tmp_path / "m" / "m.onnx", device="cpu")


@pytest.mark.parametrize("value", [5, 2**32 + 7, 2**31])
def test_an_enum_value_the_enum_lacks_leaves_the_field_as_it_was(value):
    data = _model_with(_tensor_with_location(_varint(value), "w.data"))
    assert onnx.ModelProto.FromString(data).graph.initializer[0].data_location == 0
    assert wire.external_refs(data) == []
    # ... and after an EXTERNAL, an undefined value keeps it EXTERNAL (proto2 semantics).
    data = _model_with(_tensor_with_location(b"\x01\x70" + _varint(value), "w.data"))
    assert onnx.ModelProto.FromString(data).graph.initializer[0].data_location == 1
    assert [r[1] for r in wire.external_refs(data)] == ["w.data"]


def test_a_tag_over_32_bits_is_refused_as_protobuf_refuses_it():
    # Field 14 (data_location), varint, written as a 5-byte tag with bit 35 set.
    tag = bytes([0xF0, 0x80, 0x80, 0x80, 0x10])
    tensor = _tensor_with_location(b"\x01", "x")[:-2] + tag + b"\x01"
    bad = _model_with(tensor)
    assert _onnx_view(bad) is None
    with pytest.raises(wire.Corrupt, match="over 32 bits"):
        wire.external_refs(bad)


def test_packed_and_unpacked_repeated_fields_are_both_read():
    t = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    unpacked = t.SerializeToString()
    assert b"\x08\x02\x08\x03" in unpacked  # dims, unpacked (proto2's default)
    packed = unpacked.replace(b"\x08\x02\x08\x03", b"\x0a\x02\x02\x03")
    for body in (packed, unpacked):
        assert list(TensorProto.FromString(body).dims) == [2, 3]
    broken = packed.replace(b"\x0a\x02\x02\x03", b"\x0a\x02\x02\x83")  # a varint cut short
    with pytest.raises(Exception):  # noqa: B017  protobuf's DecodeError
        TensorProto.FromString(broken)
    graph = helper.make_graph([], "g", [], [helper.make_tensor_value_info("w", 1, [2, 3])])
    for body, ok in ((packed, True), (unpacked, True), (broken, False)):
        g = graph.SerializeToString() + b"\x2a" + _varint(len(body)) + body
        data = b"\x08\x08\x3a" + _varint(len(g)) + g
        assert (_onnx_view(data) is not None) == ok
        assert (_guard_view(data) is not None) == ok
