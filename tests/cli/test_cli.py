"""The command line as a user runs it: ``nnspec.cli.main`` called in this process, with
its output read through pytest's capfd (the file descriptors, so what onnxruntime's C++ code
prints counts too), and a few real processes where the process itself is what is tested."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT
from helpers import NO_CUDA_MESSAGE, cuda_state

from nnspec.cli import main

SPECS = ROOT / "specs"


@dataclass(frozen=True)
class Result:
    """What a run of the command gave: its exit code and everything it printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def nnspec(capfd):
    """``nnspec(*args)`` runs the command in this process, as ``python -m nnspec`` would."""

    def run(*args) -> Result:
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse exits itself: --version, --help, usage errors
            code = e.code
        out, err = capfd.readouterr()
        return Result(code, out, err)

    return run


def subprocess_run(argv: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=300, **kwargs
    )


def test_validate_prints_shape_table(nnspec):
    out = nnspec("validate", SPECS / "dbn.yaml")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].split() == ["layer", "kind", "output", "shape", "params", "trainable"]
    for expected in (
        ["hidden1", "dense", "(batch,", "500)", "392,500", "yes"],
        ["hidden3", "dense", "(batch,", "2000)", "1,002,000", "yes"],
        ["total", "1,665,010"],
        ["trainable", "1,665,010"],
        ["frozen", "0"],
    ):
        assert expected in [line.split() for line in lines]
    assert lines[-1].endswith("dbn.yaml: valid")


def test_validate_json(nnspec):
    out = nnspec("validate", SPECS / "iris.yaml", "--json")
    data = json.loads(out.stdout)
    assert data["total_params"] == data["trainable_params"] == 4 * 10 + 10 + 10 * 3 + 3
    assert data["frozen_params"] == 0
    assert [layer["output_shape"] for layer in data["layers"]] == [[None, 10], [None, 3]]


def test_validate_bad_spec_exit_2(tmp_path, nnspec):
    bad = tmp_path / "bad.yaml"
    bad.write_text((SPECS / "iris.yaml").read_text().replace("units: 3,", "units: -3,"))
    out = nnspec("validate", bad)
    assert out.returncode == 2
    assert "bad.yaml:9:26: layers[1].units: expected a positive integer, got -3" in out.stderr
    assert "Traceback" not in out.stderr


def test_compile_writes_untrained_model(tmp_path, nnspec):
    out = nnspec("compile", SPECS / "digits.yaml", "-o", tmp_path / "d.onnx")
    assert out.returncode == 0, out.stderr
    model = onnx.load(tmp_path / "d.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert "untrained" in out.stdout
    assert {i.name for i in model.graph.initializer} >= {"dense_0.weight", "dense_1.bias"}


def test_compile_without_data(tmp_path, nnspec):
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "spec_version: 1\nname: deploy-only\ntask: classification\ninput: {features: 3}\n"
        "classes: [neg, pos]\nlayers:\n  - {kind: dense, units: 4, activation: relu}\n"
        "  - {kind: dense, units: 2, activation: softmax}\nloss: cross_entropy\n"
    )
    assert nnspec("validate", spec).returncode == 0
    out = nnspec("compile", spec, "-o", tmp_path / "n.onnx")
    assert out.returncode == 0, out.stderr
    assert nnspec("train", spec, "-o", tmp_path / "t.onnx").returncode == 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """iris trained once for the module; capfd is per test, so its output is caught here."""
    tmp = tmp_path_factory.mktemp("train")
    argv = ["train", SPECS / "iris.yaml", "-o", tmp / "iris.onnx", "--metrics", tmp / "m.json"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(a) for a in argv])
    out = Result(code, stdout.getvalue(), stderr.getvalue())
    assert out.returncode == 0, out.stderr
    return tmp, out


def test_train_writes_model_and_metrics(trained):
    tmp, out = trained
    metrics = json.loads((tmp / "m.json").read_text())
    assert metrics["epochs_run"] == len(metrics["history"]) > 0
    assert metrics["test"]["accuracy"] >= 0.95 and metrics["test"]["loss"] > 0
    assert metrics["parity"]["provider"] == "CPUExecutionProvider"
    assert metrics["parity"]["max_abs_err"] <= 1e-5
    assert metrics["seconds"] > 0
    assert "test: loss" in out.stdout and "parity" in out.stdout
    meta = {p.key: p.value for p in onnx.load(tmp / "iris.onnx").metadata_props}
    assert json.loads(meta["nnspec_test_metrics"])["accuracy"] == metrics["test"]["accuracy"]
    assert json.loads(meta["nnspec_parity"])["max_abs_err"] == metrics["parity"]["max_abs_err"]


def test_train_quiet(tmp_path, nnspec):
    out = nnspec("train", SPECS / "iris2d.yaml", "-o", tmp_path / "m.onnx", "--quiet")
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""


def test_predict_csv_with_header(trained, tmp_path, nnspec):
    tmp, _ = trained
    rows = (ROOT / "nnspec" / "data" / "datasets" / "iris.csv").read_text().splitlines()
    (tmp_path / "new.csv").write_text("\n".join([rows[0], rows[1], rows[60], rows[140]]) + "\n")
    out = nnspec(
        "predict",
        tmp / "iris.onnx",
        tmp_path / "new.csv",
        "-o",
        tmp_path / "o.csv",
        "--device",
        "cpu",
    )
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert [r["label"] for r in table] == ["setosa", "versicolor", "virginica"]
    assert set(table[0]) == {"label", "p_setosa", "p_versicolor", "p_virginica"}
    assert "device cpu" in out.stderr


def test_predict_npy_to_stdout(trained, tmp_path, nnspec):
    tmp, _ = trained
    np.save(tmp_path / "x.npy", np.array([[5.1, 3.5, 1.4, 0.2]]))
    out = nnspec("predict", tmp / "iris.onnx", tmp_path / "x.npy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].startswith("setosa,")


def test_predict_wrong_width_is_exit_2(trained, tmp_path, nnspec):
    tmp, _ = trained
    (tmp_path / "x.csv").write_text("1,2,3\n4,5,6\n")
    out = nnspec("predict", tmp / "iris.onnx", tmp_path / "x.csv")
    assert out.returncode == 2
    assert "expected 4 features per row, got 3" in out.stderr and "Traceback" not in out.stderr


def test_predict_cuda_without_gpu_is_exit_2(trained, nnspec):
    if cuda_state() == "works":
        pytest.skip("CUDA works here")
    tmp, _ = trained
    out = nnspec("predict", tmp / "iris.onnx", tmp / "m.json", "--device", "cuda")
    assert out.returncode == 2 and NO_CUDA_MESSAGE[cuda_state()] in out.stderr
    assert "Traceback" not in out.stderr


def test_inspect(trained, nnspec):
    tmp, _ = trained
    out = nnspec("inspect", tmp / "iris.onnx")
    assert out.returncode == 0, out.stderr
    for expected in (
        "IR:        8; opset: ai.onnx 18",
        "params:    83",
        "input: float32 (batch, 4)",
        "probabilities: float32 (batch, 3)",
        "label: int64 (batch)",
        "nnspec_class_names",
        "nnspec_spec_sha256",
    ):
        assert expected in out.stdout


def test_inspect_missing_file(tmp_path, nnspec):
    out = nnspec("inspect", tmp_path / "none.onnx")
    assert out.returncode == 2 and "no such model file" in out.stderr


def test_schema(nnspec):
    out = nnspec("schema")
    schema = json.loads(out.stdout)
    assert schema["title"] == "Spec"
    assert {"spec_version", "layers", "loss", "train"} <= set(schema["properties"])
    assert "DenseSpec" in schema["$defs"]
    assert schema["properties"]["layers"]["description"]


def test_version(nnspec):
    from importlib import metadata

    out = nnspec("--version")
    # The installed distribution's version, written once in runtime/nnspec_runtime/_version.py.
    assert out.returncode == 0 and out.stdout == f"nnspec {metadata.version('nnspec')}\n"


def test_predict_header_without_the_feature_names_is_exit_2(trained, tmp_path, nnspec):
    tmp, _ = trained
    # One misspelled feature and the target column: never fed in by position.
    (tmp_path / "x.csv").write_text(
        "sepal_length,sepal_width,petal_lenght,species\n5.1,3.5,1.4,setosa\n"
    )
    out = nnspec("predict", tmp / "iris.onnx", tmp_path / "x.csv")
    assert out.returncode == 2
    assert "feature column(s) petal_length, petal_width are not in the header" in out.stderr


def test_predict_errors_give_the_file_line(trained, tmp_path, nnspec):
    tmp, _ = trained
    (tmp_path / "x.csv").write_text("1,2,3,4\n\n\n5,6,x,8\n")
    out = nnspec("predict", tmp / "iris.onnx", tmp_path / "x.csv")
    assert out.returncode == 2 and "x.csv:4: column 3: expected a number, got 'x'" in out.stderr


def test_unwritable_outputs_fail_before_training(tmp_path, nnspec):
    (tmp_path / "adir").mkdir()
    out = nnspec(
        "train", SPECS / "iris.yaml", "-o", tmp_path / "m.onnx", "--metrics", tmp_path / "adir"
    )
    assert out.returncode == 2 and "is a directory" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "m.onnx").exists()
    out = nnspec("compile", SPECS / "iris.yaml", "-o", tmp_path / "no" / "such" / "m.onnx")
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_written_files_are_not_private(trained):
    tmp, _ = trained
    umask = os.umask(0)
    os.umask(umask)
    for name in ("iris.onnx", "m.json"):
        assert (tmp / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_negative_seed_is_a_usage_error(tmp_path, nnspec):
    out = nnspec("compile", SPECS / "iris.yaml", "-o", tmp_path / "m.onnx", "--seed", "-1")
    assert out.returncode == 2 and "expected a non-negative integer" in out.stderr


def test_inspect_counts_parameters_whatever_the_layer_names(tmp_path, nnspec):
    spec = tmp_path / "pp.yaml"
    spec.write_text(
        (SPECS / "iris.yaml")
        .read_text()
        .replace("{kind: dense, units: 10", "{kind: dense, name: preprocess, units: 10")
    )
    assert nnspec("compile", spec, "-o", tmp_path / "pp.onnx").returncode == 0
    assert "params:    83" in nnspec("inspect", tmp_path / "pp.onnx").stdout


def test_inspect_empty_file_is_exit_2(tmp_path, nnspec):
    (tmp_path / "empty.onnx").write_bytes(b"")
    out = nnspec("inspect", tmp_path / "empty.onnx")
    assert out.returncode == 2 and "not an ONNX model" in out.stderr


# -- real processes ---------------------------------------------------------------------------
# Everything above calls main() in this process: no interpreter start-up and imports per test.
# These three stay subprocesses because what they check exists only in a real process. (The
# signals, SIGINT and SIGTERM during training, are sent to real processes in test_checkpoint.)


def test_python_m_nnspec_exits_with_the_code_of_main(tmp_path):
    """``python -m nnspec`` hands main()'s return value to sys.exit: the shell sees 2 for a
    user error, with one located line and no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text((SPECS / "iris.yaml").read_text().replace("units: 3,", "units: -3,"))
    out = subprocess_run([sys.executable, "-m", "nnspec", "validate", bad])
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == f"{bad}:9:26: layers[1].units: expected a positive integer, got -3\n"


def test_the_console_script_runs_the_command():
    """The ``nnspec`` script that pip writes from pyproject's [project.scripts]: it must find
    ``nnspec.cli:main`` and exit with its code."""
    script = shutil.which("nnspec", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("no nnspec console script beside this Python (pip install -e . writes it)")
    out = subprocess_run([script, "validate", SPECS / "iris.yaml"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "iris-mlp (classification)" and lines[-1] == f"{SPECS / 'iris.yaml'}: valid"


def test_a_reader_that_leaves_early_gets_no_traceback():
    """``nnspec validate spec --json | head -0``: the pipe is closed before nnspec writes. The
    process exits 1, silently: no BrokenPipeError traceback, and no "Exception ignored" when
    the interpreter flushes stdout at exit (main points the stdout descriptor at /dev/null,
    which only a real process with a real pipe shows)."""
    argv = [sys.executable, "-m", "nnspec", "validate", str(SPECS / "alexnet.yaml"), "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # long before the child has imported nnspec and written anything
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 1 and err == ""
