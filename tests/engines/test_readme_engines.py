"""The README's "More than one machine" commands, run line by line as a new user would: a
real local Dask cluster for scoring and for a sweep, in a fresh directory."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from nnspec import cli

pytest.importorskip("distributed", reason="the dask extra is not installed")
pytest.importorskip("pyarrow", reason="the dask extra is not installed")


def block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^## More than one machine$(.*?)(?=^## )", text, re.S | re.M)
    assert found, "README.md has no '## More than one machine' section"
    code = re.search(r"^```bash\n(.*?)^```$", found.group(1), re.S | re.M)
    assert code, "no ```bash block in 'More than one machine'"
    return [line for line in code.group(1).splitlines() if line.strip()]


def test_the_section_shows_both_commands_on_a_local_cluster():
    lines = block()
    assert any("predict" in ln and "--engine dask" in ln for ln in lines)
    assert any("sweep" in ln and "--engine dask" in ln for ln in lines)
    assert any("--resume" in ln for ln in lines)


def test_more_than_one_machine_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("specs", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name)
    ran = []
    for line in block():
        argv = shlex.split(line, comments=True)
        if argv[0] == "pip":
            continue
        if argv[0] == "python":
            proc = subprocess.run(
                [sys.executable, *argv[1:]], capture_output=True, text=True, timeout=300
            )
            assert proc.returncode == 0, proc.stderr
            continue
        assert argv[0] == "nnspec", f"the test does not know how to run {line}"
        code = cli.main(argv[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{line} exited with {code}:\n{out}\n{err}"
        ran.append((argv[1], out + err))
    assert len(list((tmp_path / "scored").glob("*.parquet"))) == 8
    assert "8 already complete" in ran[2][1]  # the rerun with --resume scored nothing
    a = (tmp_path / "sweep" / "summary.csv").read_text().splitlines()
    b = (tmp_path / "sweep-dask" / "summary.csv").read_text().splitlines()

    def drop_seconds(rows):
        return [",".join(r.split(",")[:-2]) for r in rows]

    assert drop_seconds(a) == drop_seconds(b) and len(a) == 9
    assert (tmp_path / "sweep" / "best.onnx").exists()
