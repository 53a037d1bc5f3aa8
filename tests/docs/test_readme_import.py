"""The README's "Importing pretrained models" section: its import -> freeze -> fine-tune ->
export commands run as written, and the output it shows is what ``nnspec import`` prints."""

from __future__ import annotations

import os
import re
import shlex
import shutil

from conftest import ROOT

from nnspec import cli

TITLE = "### Importing pretrained models: PyTorch, scikit-learn"


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(TITLE)
    return text[start : text.index("\n## ", start)]


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```$", _section(), re.S | re.M)


def test_flow_runs_as_written(tmp_path, monkeypatch, capsys):
    flow = next(b for b in _blocks("bash") if "examples/import-finetune.yaml" in b)
    monkeypatch.chdir(tmp_path)
    for name in ("examples/import-finetune.yaml", "examples/new_flowers.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    fixtures = tmp_path / "tests" / "onnxio" / "fixtures"
    fixtures.mkdir(parents=True)
    shutil.copy(ROOT / "tests/onnxio/fixtures/sklearn_mlpclassifier_nozipmap.onnx", fixtures)
    for line in filter(str.strip, flow.splitlines()):
        argv = shlex.split(line, comments=True)
        assert argv[0] == "nnspec"
        assert cli.main(argv[1:]) == 0, line
    out = capsys.readouterr().out
    assert "loaded: MatMul, MatMul1" in out and "fresh:  head (not in the model)" in out
    assert "accuracy 1.0000" in out
    assert os.path.getsize(tmp_path / "iris-ft-predictions.csv") > 0


def test_shown_output_is_what_import_prints(tmp_path, monkeypatch, capsys):
    shown = next(b for b in _blocks("") if b.startswith("$ nnspec import convnet.onnx"))
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "tests/onnxio/fixtures/torch_ts_convnet_opset17.onnx", "convnet.onnx")
    assert cli.main(["import", "convnet.onnx", "-o", "convnet.yaml"]) == 0
    assert capsys.readouterr().out == shown.split("\n", 1)[1]
