"""Types reach users: both packages ship py.typed, the lazily loaded names (nnspec.train,
nnspec.load_spec, nnspec_runtime.Model, ...) have their real types for a type checker, and
examples/ type-checks with mypy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

PROBE = """\
import nnspec
import nnspec_runtime

reveal_type(nnspec.train)
reveal_type(nnspec.load_spec)
reveal_type(nnspec.export)
reveal_type(nnspec_runtime.Model)
reveal_type(nnspec.Spec)
"""


def test_both_packages_ship_py_typed():
    assert (ROOT / "nnspec" / "py.typed").is_file()
    assert (ROOT / "runtime" / "nnspec_runtime" / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"py.typed"' in pyproject
    assert '"py.typed"' in (ROOT / "runtime" / "pyproject.toml").read_text()


def test_lazy_names_have_types_and_examples_type_check(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (bash .ci/run installs it)")
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    # An editable install's import hook is invisible to mypy: point it at the sources.
    env = {**os.environ, "MYPYPATH": str(ROOT / "runtime")}
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-incremental"]
        + ["--cache-dir", str(tmp_path / "cache"), str(ROOT / "examples"), str(probe)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    revealed = [line for line in out.stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == 5
    assert "-> nnspec.pipeline.TrainResult" in revealed[0]
    assert "(path_or_text: str | pathlib.Path) -> nnspec.spec.models.Spec" in revealed[1]
    assert "-> onnx.onnx_ml_pb2.ModelProto" in revealed[2]
    assert "-> nnspec_runtime.model.Model" in revealed[3]
    assert "nnspec.spec.models.Spec" in revealed[4]
    assert all("Any" != line.rsplit('"', 2)[-2] for line in revealed)
