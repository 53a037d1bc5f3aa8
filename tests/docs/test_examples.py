"""The examples/ scripts run as a user runs them."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

from conftest import ROOT
from helpers import cuda_state

import nnspec


def test_quickstart(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    labels = [line.split("->")[1].split()[0] for line in out.stdout.splitlines() if "->" in line]
    assert labels == ["setosa", "versicolor", "virginica", "versicolor", "virginica"]
    assert (tmp_path / "iris.onnx").stat().st_size > 0


def test_deploy(tmp_path):
    path = tmp_path / "iris.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "iris.yaml")), path)
    script = [sys.executable, str(ROOT / "examples" / "deploy.py"), str(path)]
    out = subprocess.run([*script, "--batch", "64"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    device = "cuda" if cuda_state() == "works" else "cpu"
    assert lines[0].startswith(f"{path}: {device} (") and lines[0].endswith("input (4,)")
    said = "\n".join(lines)
    assert re.search(r"3 rows -> \['(setosa|versicolor|virginica)', ", said)
    assert f"bound 64 rows in runs of [64]: {device} output" in said
    for path_ in ("run", "iobinding"):
        assert re.search(rf"  {path_} +[\d,]+ samples/s, p50 [\d.]+ ms", said)
    has_torch = importlib.util.find_spec("torch") is not None
    assert ("torch in, torch out: (64, 3) on" in said) == has_torch
    if cuda_state() != "works":
        out = subprocess.run([*script, "--device", "cuda"], capture_output=True, text=True)
        assert out.returncode == 2 and out.stdout.startswith("cannot run on CUDA: ")
