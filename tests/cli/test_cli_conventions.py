"""The command line's conventions: every subcommand's --help has a description, examples and
exit codes; bare nnspec prints the help; - is standard input for specs and prediction inputs;
--json errors are JSON objects on stderr; nnspec completion bash|zsh."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from nnspec.cli import main
from nnspec.cli.commands import parser
from nnspec.cli.help_text import subparsers

IRIS = ROOT / "specs" / "iris.yaml"


def _run(*args, stdin: bytes | None = None):
    return subprocess.run(
        [sys.executable, "-m", "nnspec", *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.parametrize("name", sorted(subparsers(parser())))
def test_every_subcommand_help_has_a_description_examples_and_exit_codes(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    sub = subparsers(parser())[name]
    assert sub.description and len(sub.description.split()) >= 12, name
    assert "examples:\n  nnspec " + name in text
    assert "exit codes:\n  0    success" in text or "exit codes:\n  0  written" in text


def test_bare_nnspec_prints_the_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nnspec") and "validate" in out and "quantize" in out


def test_a_spec_from_standard_input():
    out = _run("validate", "-", stdin=IRIS.read_bytes())
    assert out.returncode == 0, out.stderr
    assert b"dense_1     dense   (batch, 3)" in out.stdout and b"<stdin>: valid" in out.stdout
    bad = IRIS.read_bytes().replace(b"units: 10", b"units: -3")
    out = _run("validate", "-", stdin=bad)
    assert out.returncode == 2
    assert out.stderr.decode().startswith("<stdin>:8:26: ")
    assert b"layers[0].units: expected a positive integer, got -3" in out.stderr


def test_a_spec_from_standard_input_takes_overrides_and_output_checks(tmp_path):
    out = _run("validate", "-", "--set", "layers.0.units=7", stdin=IRIS.read_bytes())
    assert out.returncode == 0, out.stderr
    assert b"dense_0     dense   (batch, 7)" in out.stdout
    out = _run("validate", "-", "--set", "train.epochs=-1", stdin=IRIS.read_bytes())
    assert out.returncode == 2
    assert b"--set train.epochs=-1: train.epochs: expected a positive integer" in out.stderr
    # The spec's data file is an input even when the spec comes from standard input.
    data = tmp_path / "iris.csv"
    shutil.copy(ROOT / "nnspec" / "data" / "datasets" / "iris.csv", data)
    before = data.read_bytes()
    out = _run("compile", "-", "--data", data, "-o", data, stdin=IRIS.read_bytes())
    assert out.returncode == 2 and not out.stdout
    assert b"the model would overwrite the data file, which this command reads" in out.stderr
    assert data.read_bytes() == before


def test_standard_input_is_bounded(monkeypatch):
    import io

    from nnspec import untrusted
    from nnspec.cli import stdio
    from nnspec.errors import DataError

    monkeypatch.setattr(untrusted, "memory_limit", lambda: 3 * 2**20)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"1,2\n" * 2**20)))
    with pytest.raises(DataError, match=r"<stdin>: over 3 MiB of input"):
        stdio.read_inputs_argument("-", None, 2)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"1,2\n3,4\n")))
    assert stdio.read_inputs_argument("-", None, 2).tolist() == [[1, 2], [3, 4]]


def test_prediction_inputs_from_standard_input(tmp_path):
    model = tmp_path / "iris.onnx"
    assert main(["compile", str(IRIS), "-o", str(model)]) == 0
    rows = ROOT / "examples" / "new_flowers.csv"
    want = _run("predict", model, rows)
    got = _run("predict", model, "-", stdin=rows.read_bytes())
    assert got.returncode == 0, got.stderr
    assert got.stdout == want.stdout and got.stdout.count(b"\n") == 1 + 5
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]])
    np.save(tmp_path / "x.npy", x)
    npy = _run("predict", model, "-", stdin=(tmp_path / "x.npy").read_bytes())
    assert npy.returncode == 0, npy.stderr
    assert npy.stdout == _run("predict", model, tmp_path / "x.npy").stdout
    broken = _run("predict", model, "-", stdin=b"a,b\n1,2\n")
    assert broken.returncode == 2 and broken.stderr.startswith(b"<stdin>")


def test_json_errors_are_objects_on_stderr():
    bad = (
        IRIS.read_bytes()
        .replace(b"units: 10", b"units: -3")
        .replace(b"kind: dense, units: 3", b"kind: dens, units: 3")
    )
    out = _run("validate", "-", "--json", stdin=bad)
    assert out.returncode == 2 and out.stdout == b""
    objects = [json.loads(line) for line in out.stderr.decode().splitlines()]
    assert len(objects) == 2
    first = objects[0]
    assert set(first) >= {"file", "line", "column", "path", "message"}
    assert first["file"] == "<stdin>" and first["path"] == "layers[0].units"
    assert isinstance(first["line"], int) and isinstance(first["column"], int)
    assert first["message"] == "expected a positive integer, got -3"
    assert objects[1]["path"] == "layers[1].kind"
    missing = _run("inspect", "nope.onnx", "--json")
    (obj,) = [json.loads(line) for line in missing.stderr.decode().splitlines()]
    assert missing.returncode == 2 and obj["file"] == "nope.onnx" and obj["line"] is None
    assert "no such" in obj["message"]


def test_completion_scripts(tmp_path):
    out = _run("completion", "bash")
    assert out.returncode == 0
    script = out.stdout.decode()
    assert "complete -o filenames -F _nnspec nnspec" in script
    assert "quantize) " in script and "--target-onnxruntime" in script
    zsh = _run("completion", "zsh").stdout.decode()
    assert "bashcompinit" in zsh and "_nnspec()" in zsh
    if shutil.which("bash") is None:
        pytest.skip("no bash to run the completion in")
    # Complete in a real bash: the subcommands after `nnspec q`, the options after `--target-o`.
    probe = tmp_path / "probe.sh"
    probe.write_text(
        script
        + 'COMP_WORDS=(nnspec q); COMP_CWORD=1; _nnspec; echo "${COMPREPLY[@]}"\n'
        + 'COMP_WORDS=(nnspec compile --target-o); COMP_CWORD=2; _nnspec; echo "${COMPREPLY[@]}"\n'
        + 'COMP_WORDS=(nnspec completion ""); COMP_CWORD=2; _nnspec; echo "${COMPREPLY[@]}"\n'
    )
    lines = subprocess.run(["bash", str(probe)], capture_output=True, text=True).stdout.splitlines()
    assert lines == ["quantize", "--target-onnxruntime", "bash zsh"]
