"""Hostile and broken models given to ``nnspec import``: a clear one-line error, exit code 2,
no traceback, and nothing written (no spec, no weights, no staging folder)."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from import_checks import FIXTURES
from onnx import TensorProto, helper, numpy_helper

from nnspec.cli.commands import main


def _mlp(w=None, **tensor_fields) -> onnx.ModelProto:
    w = np.ones((3, 2), np.float32) if w is None else w
    t = numpy_helper.from_array(w, "w")
    for k, v in tensor_fields.items():
        setattr(t, k, v)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[t],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _refuse(tmp_path, capsys, model_path) -> str:
    out = tmp_path / "out" / "spec.yaml"
    out.parent.mkdir()
    assert main(["import", str(model_path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert list(out.parent.iterdir()) == []  # no spec, no weights, no staging folder
    return err


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def test_truncated_file(tmp_path, capsys):
    data = (FIXTURES / "torch_ts_convnet_opset17.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    err = _refuse(tmp_path, capsys, path)
    assert "cut.onnx" in err and ("not a readable ONNX model" in err or "truncated" in err)


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 10, b"not an onnx file\n"])
def test_not_a_model(tmp_path, capsys, content):
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    err = _refuse(tmp_path, capsys, path)
    assert "junk.onnx" in err


def test_missing_file(tmp_path, capsys):
    assert "no such model file" in _refuse(tmp_path, capsys, tmp_path / "absent.onnx")


def test_raw_data_shorter_than_the_dims(tmp_path, capsys):
    model = _mlp()
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[:8]
    err = _refuse(tmp_path, capsys, _save(tmp_path, model))
    assert "initializer 'w' declares dims [3, 2] (24 bytes) but holds 8 bytes" in err


def test_dims_that_would_allocate_terabytes(tmp_path, capsys):
    model = _mlp()
    t = model.graph.initializer[0]
    del t.dims[:]
    t.dims.extend([2**20, 2**20])
    err = _refuse(tmp_path, capsys, _save(tmp_path, model))
    assert "declares dims [1048576, 1048576], 4.1e+03 GiB; refused" in err


def test_input_of_huge_dims(tmp_path, capsys):
    model = _mlp()
    dim = model.graph.input[0].type.tensor_type.shape.dim[1]
    dim.dim_value = 10**12
    err = _refuse(tmp_path, capsys, _save(tmp_path, model))
    assert "values per sample" in err and "refused" in err


def _external(tmp_path, location: str, length: int = 24) -> onnx.ModelProto:
    model = _mlp()
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return model


def test_external_data_outside_the_folder(tmp_path, capsys):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"s" * 64)
    (tmp_path / "models").mkdir()
    path = _save(tmp_path / "models", _external(tmp_path, "../secret.bin"))
    err = _refuse(tmp_path, capsys, path)
    assert "'../secret.bin'" in err and "outside the model's directory" in err


def test_external_data_absolute_path(tmp_path, capsys):
    path = _save(tmp_path, _external(tmp_path, "/etc/passwd"))
    assert "absolute path" in _refuse(tmp_path, capsys, path)


def test_external_data_through_a_symlink_out(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    (tmp_path / "elsewhere.bin").write_bytes(b"\0" * 24)
    os.symlink(tmp_path / "elsewhere.bin", tmp_path / "models" / "w.bin")
    path = _save(tmp_path / "models", _external(tmp_path, "w.bin"))
    assert "outside the model's directory" in _refuse(tmp_path, capsys, path)


def test_external_data_missing_or_short(tmp_path, capsys):
    path = _save(tmp_path, _external(tmp_path, "m.onnx.data"))
    assert "is missing" in _refuse(tmp_path, capsys, path)
    (tmp_path / "m.onnx.data").write_bytes(b"\0" * 10)
    (tmp_path / "out").rmdir()
    assert "truncated or damaged" in _refuse(tmp_path, capsys, path)


def test_external_data_length_under_the_dims(tmp_path, capsys):
    (tmp_path / "m.onnx.data").write_bytes(b"\0" * 24)
    path = _save(tmp_path, _external(tmp_path, "m.onnx.data", length=12))
    assert "declares dims [3, 2] (24 bytes) but its external data holds 12" in _refuse(
        tmp_path, capsys, path
    )


def test_cycle(tmp_path, capsys):
    model = _mlp()
    del model.graph.node[:]
    model.graph.node.extend(
        [
            helper.make_node("Add", ["x", "b"], ["a"], name="first"),
            helper.make_node("Relu", ["a"], ["b"], name="second"),
            helper.make_node("Gemm", ["b", "w"], ["y"], name="fc"),
        ]
    )
    err = _refuse(tmp_path, capsys, _save(tmp_path, model))
    assert "the graph has a cycle" in err and "'first' (Add)" in err and "'second' (Relu)" in err


def test_dangling_input(tmp_path, capsys):
    model = _mlp()
    model.graph.node[0].input.append("nowhere")
    err = _refuse(tmp_path, capsys, _save(tmp_path, model))
    assert "node 'fc' (Gemm) reads 'nowhere', which no node, initializer or graph input" in err


def test_control_flow_subgraph(tmp_path, capsys):
    model = _mlp()
    body = helper.make_graph([], "b", [], [])
    model.graph.node.append(
        helper.make_node("If", ["x"], ["z"], name="branch", then_branch=body, else_branch=body)
    )
    assert "'branch' (If) holds a subgraph" in _refuse(tmp_path, capsys, _save(tmp_path, model))


def test_existing_spec_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "s.yaml"
    out.write_text("mine\n")
    model = FIXTURES / "sklearn_mlpregressor.onnx"
    assert main(["import", str(model), "-o", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "mine\n"
    assert main(["import", str(model), "-o", str(out), "--force", "-q"]) == 0
    assert out.read_text().startswith("# Imported by nnspec import")
