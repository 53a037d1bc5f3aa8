"""The deploy side alone, as a server would install it: nnspec-runtime's wheel with the cpu
extra in a fresh virtual environment (no nnspec, no onnx), running examples/deploy.py on a
model nnspec exported. Slow (it installs NumPy and onnxruntime from the registry, about a
minute); `bash .ci/run` runs it."""

from __future__ import annotations

import subprocess
import sys
import venv

import pytest
from conftest import ROOT

import nnspec

pytestmark = pytest.mark.slow


def _run(*cmd, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))}\n{out.stdout}\n{out.stderr}"
    return out


def test_the_runtime_wheel_alone_runs_the_deploy_example(tmp_path):
    model = tmp_path / "iris.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "iris.yaml")), model)
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, ROOT / "runtime")
    (wheel,) = wheels.glob("nnspec_runtime-*.whl")
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    _run(python, "-m", "pip", "install", "-q", f"{wheel}[cpu]")
    listed = _run(python, "-m", "pip", "list", "--format=freeze").stdout.lower()
    assert "nnspec-runtime==" in listed and "onnxruntime==" in listed
    assert "nnspec==" not in listed and "onnx==" not in listed  # the deploy side only
    _run(python, "-m", "pip", "check")
    # Run from elsewhere, so that the checkout's own packages cannot be imported by accident.
    out = _run(python, ROOT / "examples" / "deploy.py", model, "--batch", "64", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert lines[0] == f"{model}: cpu (CPUExecutionProvider), input (4,)"
    assert "3 rows -> ['" in lines[1] and "bound 64 rows in runs of [64]: cpu output" in out.stdout
