"""The README's quick start, run command by command as a new user would, so it cannot rot.

The first ```bash block under "## Quick start" is run line by line in a fresh directory, with
the repository files that the commands name copied into it (specs, examples, data). Lines that
set up the environment (venv, pip) are not run: the tests already run in an installed one.
``nnspec`` commands run in-process through ``nnspec.cli.commands.main``, which is what the console
script calls, so the whole block takes seconds.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from nnspec import cli

README = ROOT / "README.md"
# Environment setup in the quick start: shown to the user, not run by the test.
SETUP = ("python3", "python", ".", "source", "pip")
# Commands that need an optional extra, and the module that the extra installs.
EXTRAS = {"plot": "matplotlib"}


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## )", text, re.S | re.M)
    assert found, f"README.md has no '## {title}' section"
    return found.group(1)


def quick_start() -> list[str]:
    block = re.search(r"^```bash\n(.*?)^```$", section("Quick start"), re.S | re.M)
    assert block, "no ```bash block in the README's quick start"
    return [line for line in block.group(1).splitlines() if line.strip()]


def commands() -> list[list[str]]:
    """Each command of the quick start as argv; a `a && b` line gives several."""
    out = []
    for line in quick_start():
        for part in line.split("&&"):
            out.append(shlex.split(part, comments=True))
    return out


def test_quick_start_covers_the_commands_a_new_user_needs():
    run = [argv[1] for argv in commands() if argv[0] == "nnspec"]
    for needed in ("validate", "train", "predict", "inspect", "init", "plot"):
        assert needed in run, f"the quick start does not show nnspec {needed}"
    assert any(argv[:2] == ["pip", "install"] for argv in commands()), "no install step"


def _copy_inputs(argv: list[str], into: Path) -> None:
    """Copy the repository files an argument names (a spec, data) into the run directory."""
    for arg in argv:
        source = ROOT / arg
        target = into / arg
        if arg.startswith("-") or target.exists() or not source.exists() or source == ROOT:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)


def test_quick_start_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ran = 0
    for argv in commands():
        if argv[0] in SETUP:
            continue
        assert argv[0] == "nnspec", f"the test does not know how to run {shlex.join(argv)}"
        module = EXTRAS.get(argv[1])
        if module and importlib.util.find_spec(module) is None:
            continue  # the optional extra is not installed here
        _copy_inputs(argv[2:], tmp_path)
        code = cli.main(argv[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{shlex.join(argv)} exited with {code}:\n{out}\n{err}"
        ran += 1
    assert ran >= 6


def _block_after(text: str, lead: str) -> str:
    found = re.search(re.escape(lead) + r".*?\n```\n(.*?)^```$", text, re.S | re.M)
    assert found, f"README.md: no ``` block after {lead!r}"
    return found.group(1)


def test_the_validate_output_shown_is_what_validate_prints(monkeypatch, capsys):
    shown = _block_after(section("Quick start"), "`nnspec validate specs/iris.yaml` prints:")
    monkeypatch.chdir(ROOT)
    assert cli.main(["validate", "specs/iris.yaml"]) == 0
    assert capsys.readouterr().out == shown


def test_the_train_output_shown_has_the_lines_train_prints(tmp_path, capsys):
    shown = _block_after(section("Quick start"), "and `nnspec train specs/iris.yaml")
    assert (
        cli.main(["train", str(ROOT / "specs" / "iris.yaml"), "-o", str(tmp_path / "i.onnx")]) == 0
    )
    printed = capsys.readouterr().out

    # Times (and, on other machines, the last digits of parity errors) vary: compare shapes.
    def shape(text: str) -> list[str]:
        return [re.sub(r"\d+(\.\d+)?(e[-+]\d+)?", "N", line) for line in text.splitlines()]

    assert shape(shown.replace("iris.onnx", str(tmp_path / "i.onnx"))) == shape(printed)


def test_local_links_resolve():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert {"docs/spec.md", "docs/onnx.md"} <= set(local)
    # Images included: the worked examples' plots in examples/plots/.
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


@pytest.mark.parametrize("spec", sorted(p.name for p in (ROOT / "specs").glob("*.yaml")))
def test_every_shipped_spec_has_a_worked_example(spec):
    assert f"specs/{spec}" in section("Worked examples")


def test_quick_start_python_example_runs(tmp_path, monkeypatch, capsys):
    """The quick start's ```python block (a DataFrame, GridSearchCV), run as written from a
    copy of the files it reads."""
    for module in ("pandas", "sklearn"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[pandas,sklearn]')")
    block = re.search(r"^```python\n(.*?)^```$", section("Quick start"), re.S | re.M)
    assert block, "no ```python block in the README's quick start"
    code = block.group(1)
    _copy_inputs(re.findall(r'"([\w./-]+\.(?:yaml|csv))"', code), tmp_path)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md quick start", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert "'accuracy': 0.96" in printed[0]
    assert (tmp_path / "iris-df.onnx").exists() and (tmp_path / "iris-best.onnx").exists()
    assert printed[1].startswith("{'epochs': ")
