"""The examples/ scripts run as a user runs them."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


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
