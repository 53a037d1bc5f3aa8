"""The runtime's hand-written protobuf wire reader (``nnspec_runtime.wire``) against onnx's own
parser of the same file: every tensor that keeps its data in an external file, wherever it
stands in the model, with its location, offset and length. (The tests may import onnx; the
runtime may not.)"""

from __future__ import annotations

import importlib
import mmap
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT
from onnx import TensorProto, helper, numpy_helper

import nnspec
from nnspec_runtime import wire


def _reference(path: Path) -> list[tuple[str, str | None, int, int | None]]:
    """What ``wire.external_refs`` should find, from onnx's parse of the file: every TensorProto
    marked EXTERNAL, found by walking all message fields through protobuf's descriptors (not
    the reader's list of field numbers), so that a place the reader misses shows."""
    found = []

    def visit(message) -> None:
        if isinstance(message, TensorProto) and message.data_location == TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in message.external_data}
            length = entries.get("length")
            found.append(
                (
                    message.name,
                    entries.get("location"),
                    int(entries.get("offset", 0)),
                    None if length is None else int(length),
                )
            )
        for field, value in message.ListFields():
            if field.type != field.TYPE_MESSAGE:
                continue
            for item in [value] if hasattr(value, "ListFields") else value:
                visit(item)

    visit(onnx.load(str(path), load_external_data=False))
    return found


def _external(tensor: TensorProto, **entries) -> TensorProto:
    """``tensor`` marked as keeping its data in an external file, with these entries."""
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=str(value))
    return tensor


def _tensor(name: str, size: int = 3) -> TensorProto:
    return numpy_helper.from_array(np.arange(size, dtype=np.float32), name)


def _sparse(name: str, location: str) -> onnx.SparseTensorProto:
    values = _external(_tensor(f"{name}_values", 2), location=location, offset=64, length=8)
    indices = numpy_helper.from_array(np.array([0, 2], np.int64), f"{name}_indices")
    return helper.make_sparse_tensor(values, indices, [4])


def _everywhere() -> onnx.ModelProto:
    """A model (not meant to run) with an external tensor in every place a TensorProto can
    stand: initializers, sparse initializers, node attributes (tensor, tensors, sparse tensor,
    sparse tensors), subgraphs (graph, graphs), local functions (their nodes, and their
    attributes' default values) and training info."""
    inner = helper.make_graph(
        [helper.make_node("Constant", [], ["k"], value=_external(_tensor("deep"), location="d"))],
        "inner",
        [],
        [helper.make_tensor_value_info("k", TensorProto.FLOAT, [3])],
    )
    branch = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=inner, else_branch=inner)],
        "branch",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        initializer=[_external(_tensor("in_branch"), location="b.data", offset=4096)],
    )
    node = helper.make_node(
        "Custom",
        ["x"],
        ["z"],
        domain="test",
        t=_external(_tensor("attr_t"), location="w.data", offset=0, length=12),
        ts=[_external(_tensor("attr_ts0"), location="w.data", offset=12, length=12), _tensor("x")],
        sp=_sparse("attr_sp", "s.data"),
        sps=[_sparse("attr_sps0", "s.data"), _sparse("attr_sps1", "s2.data")],
        g=branch,
        gs=[branch, inner],
    )
    graph = helper.make_graph(
        [
            node,
            helper.make_node("Constant", [], ["c"], value=_external(_tensor("const"), offset=8)),
        ],
        "main",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            _external(_tensor("init"), location="w.data", offset=24, length=12),
            _tensor("inline"),  # data inside the model: not listed
        ],
        sparse_initializer=[_sparse("sparse_init", "w.data")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    function = helper.make_function(
        "test",
        "Fn",
        ["a"],
        ["b"],
        [helper.make_node("Constant", [], ["b"], value=_external(_tensor("in_fn"), location="f"))],
        [helper.make_opsetid("", 18)],
    )
    default = _external(_tensor("fn_default"), location="f", offset=12)
    function.attribute_proto.append(helper.make_attribute("w", default))
    model.functions.append(function)
    training = model.training_info.add()
    training.initialization.CopyFrom(
        helper.make_graph(
            [], "init", [], [], initializer=[_external(_tensor("trained"), location="t.data")]
        )
    )
    training.algorithm.CopyFrom(inner)
    return model


def test_the_wire_reader_finds_what_onnx_finds_everywhere(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(_everywhere().SerializeToString())
    want = _reference(path)
    got = wire.external_refs(path.read_bytes())
    assert sorted(got, key=repr) == sorted(want, key=repr)
    names = {name for name, *_ in want}
    assert names >= {"init", "attr_t", "attr_ts0", "deep", "in_branch", "in_fn", "fn_default"}
    assert names >= {"trained"}
    assert names >= {"sparse_init_values", "attr_sp_values", "attr_sps1_values", "const"}
    assert "inline" not in names and "x" not in names
    assert ("const", None, 8, None) in got  # no location, no length: as the reader says
    # The same from an mmap of the file, as Model reads a model given by its path.
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert wire.external_refs(m) == got


def test_the_wire_reader_agrees_with_onnx_on_an_nnspec_model_with_external_data(tmp_path):
    network = nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "iris.yaml"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importlib.import_module("nnspec.onnxio.lower"), "MAX_PROTOBUF", 10_000)
        nnspec.export(network, tmp_path / "m.onnx")
    want = _reference(tmp_path / "m.onnx")
    assert want and all(location == "m.onnx.data" for _, location, _, _ in want)
    assert wire.external_refs((tmp_path / "m.onnx").read_bytes()) == want
    # A model with its weights inside lists none, as onnx says.
    nnspec.export(network, tmp_path / "inside.onnx")
    assert wire.external_refs((tmp_path / "inside.onnx").read_bytes()) == []
    assert _reference(tmp_path / "inside.onnx") == []
