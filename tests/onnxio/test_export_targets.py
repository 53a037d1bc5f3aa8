"""--opset, --target-onnxruntime, the runtime's refusal of an onnxruntime too old for a model,
validate's refusal of an opset the installed onnx/onnxruntime cannot handle, and what the file
says about itself (value_info, doc strings, model_version, producer)."""

from __future__ import annotations

import onnx
import pytest
from conftest import ROOT
from helpers import mlp_spec

import nnspec
from nnspec import pipeline
from nnspec.cli import main
from nnspec.spec import targets
from nnspec_runtime import Model, RuntimeModelError
from nnspec_runtime.versions import (
    ONNXRUNTIME_SUPPORT,
    check_onnxruntime,
    model_versions,
    needed_onnxruntime,
)

IRIS = ROOT / "specs" / "iris.yaml"


def test_the_wire_reader_reads_ir_and_opset_as_onnx_does(tmp_path):
    for opset in (13, 18, 20, 22):
        model = nnspec.export(nnspec.build_network(mlp_spec(dtype="float32")), opset=opset)
        got = model_versions(model.SerializeToString())
        assert got.ir_version == model.ir_version == targets.IR_FOR_OPSET[opset]
        assert got.opset == opset and got.opsets == {"": opset}


def test_ir_for_opset_is_what_onnx_says():
    from onnx import helper

    for opset, ir in targets.IR_FOR_OPSET.items():
        assert helper.find_min_ir_version_for([helper.make_opsetid("", opset)]) == ir


def test_needed_onnxruntime_from_the_table():
    assert needed_onnxruntime(18, 8) == "1.15"
    assert needed_onnxruntime(20, 9) == "1.17"
    assert needed_onnxruntime(21, 10) == "1.18"
    assert needed_onnxruntime(22, 10) == "1.21"
    assert needed_onnxruntime(99, 10) is None


@pytest.mark.parametrize(
    "release, opset", [("1.15.1", 19), ("1.17", 20), ("1.18.0", 21), ("1.20.1", 21), ("1.21", 22)]
)
def test_target_onnxruntime_picks_the_highest_opset_it_runs(release, opset):
    assert targets.opset_for_onnxruntime(release) == opset
    assert pipeline.retarget(mlp_spec(), onnxruntime=release).export.opset == opset


def test_a_release_newer_than_the_table_runs_what_its_last_row_runs():
    newest = max(ONNXRUNTIME_SUPPORT)
    assert targets.opset_for_onnxruntime(f"{newest[0]}.{newest[1] + 5}.0") == 22


def test_retarget_refusals():
    with pytest.raises(nnspec.NnspecError, match="older than any release"):
        pipeline.retarget(mlp_spec(), onnxruntime="1.3")
    with pytest.raises(nnspec.NnspecError, match="expected an onnxruntime version"):
        pipeline.retarget(mlp_spec(), onnxruntime="latest")
    with pytest.raises(nnspec.NnspecError, match=r"--opset 22 needs onnxruntime >= 1\.21"):
        pipeline.retarget(mlp_spec(), opset=22, onnxruntime="1.17")
    spec = mlp_spec()
    assert pipeline.retarget(spec) is spec
    moved = pipeline.retarget(spec, opset=13)
    assert moved.export.opset == 13 and moved.source is spec.source


def test_cli_opset_and_target(tmp_path, capfd):
    out = tmp_path / "old.onnx"
    assert main(["compile", str(IRIS), "-o", str(out), "--target-onnxruntime", "1.17"]) == 0
    assert "opset 20" in capfd.readouterr().out
    model = onnx.load(out)
    assert model.opset_import[0].version == 20 and model.ir_version == 9
    assert main(["compile", str(IRIS), "-o", str(out), "--opset", "13"]) == 0
    model = onnx.load(out)
    assert model.opset_import[0].version == 13 and model.ir_version == 7
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:  # argparse's own usage error: exit 2
        main(["compile", str(IRIS), "-o", str(tmp_path / "x.onnx"), "--opset", "23"])
    assert e.value.code == 2
    assert "expected an opset from 13 to 22, got '23'" in capfd.readouterr().err
    code = main(
        ["compile", str(IRIS), "-o", str(tmp_path / "x.onnx")]
        + ["--opset", "22", "--target-onnxruntime", "1.18"]
    )
    assert code == 2 and "runs at most opset 21" in capfd.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_runtime_refuses_an_onnxruntime_too_old(tmp_path, monkeypatch):
    model = nnspec.export(nnspec.build_network(mlp_spec(dtype="float32")), opset=22)
    data = model.SerializeToString()
    versions = model_versions(data)
    with pytest.raises(RuntimeModelError) as e:
        check_onnxruntime("m.onnx", versions, "1.18.1")
    msg = str(e.value)
    assert "IR version 10 and opset 22" in msg and "onnxruntime 1.18.1" in msg
    assert "expected onnxruntime >= 1.21" in msg and "--target-onnxruntime 1.18" in msg
    check_onnxruntime("m.onnx", versions, "1.21.0")  # new enough: nothing raised
    check_onnxruntime(
        "m.onnx",
        model_versions(
            nnspec.export(
                nnspec.build_network(mlp_spec(dtype="float32")), opset=18
            ).SerializeToString()
        ),
        "1.15.1",
    )
    # Through Model, with the installed onnxruntime reported as an old one.
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "__version__", "1.17.3")
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    with pytest.raises(RuntimeModelError, match=r"m\.onnx: the model needs a newer onnxruntime"):
        Model(path, device="cpu")
    with pytest.raises(RuntimeModelError, match="expected onnxruntime >= 1.21"):
        Model(data, device="cpu")


def test_validate_refuses_an_opset_the_installed_versions_cannot_handle(tmp_path):
    text = IRIS.read_text().replace("export: {opset: 18}", "export: {opset: 22}")
    assert "opset: 22" in text
    spec = nnspec.load_spec(text)
    with pytest.raises(nnspec.SpecError) as e:
        targets.check_installed(spec, onnx_version="1.16.2", onnxruntime_version="1.20.1")
    msg = str(e.value)
    assert "export.opset: opset 22 (IR version 10) needs onnx >= 1.17 (installed: 1.16.2)" in msg
    assert "onnxruntime >= 1.21 (installed: 1.20.1)" in msg
    assert "export.opset 21 (or --opset 21)" in msg
    assert ":" in msg.split("export.opset")[0]  # located: <spec>:line:col
    targets.check_installed(spec, onnx_version="1.17.0", onnxruntime_version="1.21.0")
    targets.check_installed(spec)  # this machine's


def test_validate_command_refuses_with_the_versions(tmp_path, monkeypatch, capfd):
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(IRIS.read_text().replace("export: {opset: 18}", "export: {opset: 21}"))
    real = targets._installed
    monkeypatch.setattr(
        targets,
        "_installed",
        lambda *names: "1.17.3" if "onnxruntime" in names else real(*names),
    )
    assert main(["validate", str(spec_file)]) == 2
    err = capfd.readouterr().err
    assert f"{spec_file}:" in err and "onnxruntime >= 1.18 (installed: 1.17.3)" in err


def test_the_model_file_describes_itself(tmp_path):
    text = IRIS.read_text().replace("export: {opset: 18}", "export: {opset: 18, model_version: 7}")
    result = nnspec.train(nnspec.load_spec(text))
    model = nnspec.export(result, tmp_path / "iris.onnx")
    model = onnx.load(tmp_path / "iris.onnx")
    assert model.model_version == 7
    assert (model.producer_name, model.producer_version) == ("nnspec", nnspec.__version__)
    assert model.doc_string.startswith("iris-mlp: an nnspec classification model (83 param")
    (inp,) = model.graph.input
    assert "float32 (batch, 4)" in inp.doc_string and "petal_width" in inp.doc_string
    docs = {o.name: o.doc_string for o in model.graph.output}
    assert "setosa, versicolor, virginica" in docs["probabilities"]
    assert docs["label"].startswith("int64 (batch,)")
    # Every intermediate value has its inferred shape, with the symbolic batch.
    shapes = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in model.graph.value_info
    }
    assert shapes["dense_0/Gemm"] == ["batch", 10] and shapes["dense_1/Gemm"] == ["batch", 3]
    produced = {o for n in model.graph.node for o in n.output}
    outputs = {o.name for o in model.graph.output}
    assert set(shapes) == produced - outputs
    assert nnspec.load_spec(IRIS.read_text()).export.model_version == 1


def test_inspect_shows_model_version_and_needed_onnxruntime(tmp_path, capfd):
    out = tmp_path / "i.onnx"
    assert main(["compile", str(IRIS), "-o", str(out), "--opset", "21"]) == 0
    capfd.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capfd.readouterr().out
    assert "IR:        10; opset: ai.onnx 21 (runs on onnxruntime >= 1.18)" in text
    assert "version:   1 (model_version)" in text
