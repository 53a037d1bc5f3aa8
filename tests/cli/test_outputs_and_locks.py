"""Outputs that are not regular files are written through or refused, never replaced; ``-``
is standard output; an output that is an input is refused; two exports to one path wait for
each other; a checkpoint directory is owned by one run at a time."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT

import nnspec
from nnspec import atomic
from nnspec.cli import main
from nnspec.training import checkpoint

IRIS = ROOT / "specs" / "iris.yaml"
ROWS = ROOT / "examples" / "new_flowers.csv"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("m") / "iris.onnx"
    nnspec.export(nnspec.train(nnspec.load_spec(IRIS)), path)
    return path


def run(capfd, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def _is_char_device(path: str) -> bool:
    return stat.S_ISCHR(os.stat(path).st_mode)


# --- devices, FIFOs, standard output -------------------------------------------------------


def test_predict_to_dev_null_writes_through_and_leaves_the_device(capfd, model):
    rc, _, err = run(capfd, "predict", model, ROWS, "-o", "/dev/null")
    assert rc == 0, err
    assert _is_char_device("/dev/null")


def test_predict_to_dev_full_is_a_clear_error(capfd, model):
    rc, _, err = run(capfd, "predict", model, ROWS, "-o", "/dev/full")
    assert rc == 2 and "/dev/full: cannot write: No space left on device" in err
    assert _is_char_device("/dev/full")


def test_metrics_to_dev_null_keeps_the_device(capfd, tmp_path):
    rc, _, err = run(capfd, "train", IRIS, "-o", tmp_path / "m.onnx", "--metrics", "/dev/null")
    assert rc == 0, err
    assert _is_char_device("/dev/null") and (tmp_path / "m.onnx").is_file()


def test_dev_stdout_is_standard_output_and_stays_a_link(capfd, model):
    rc, out, err = run(capfd, "predict", model, ROWS, "-o", "/dev/stdout")
    assert rc == 0, err
    assert out.startswith("label,p_setosa,p_versicolor,p_virginica\n") and len(out.splitlines()) > 2
    assert os.path.islink("/dev/stdout")


def test_dash_is_standard_output_for_predictions_and_metrics(capfd, model, tmp_path):
    rc, out, _ = run(capfd, "predict", model, ROWS, "-o", "-")
    assert rc == 0 and out.startswith("label,") and not (Path.cwd() / "-").exists()
    rc, out, err = run(capfd, "train", IRIS, "-o", tmp_path / "m.onnx", "--metrics", "-", "-q")
    assert rc == 0, err
    import json

    assert json.loads(out)["spec"] == "iris-mlp"


def test_dash_is_not_a_model(capfd, tmp_path):
    rc, _, err = run(capfd, "compile", IRIS, "-o", "-")
    assert rc == 2 and "standard output takes CSV and JSON outputs only" in err


def test_a_fifo_output_is_written_through(capfd, model, tmp_path):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    got = []

    def reader():
        with open(fifo, "rb") as f:
            got.append(f.read())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.2)  # the reader is waiting on the FIFO
    rc, _, err = run(capfd, "predict", model, ROWS, "-o", fifo)
    t.join(10)
    assert rc == 0, err
    assert got and got[0].startswith(b"label,") and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_fifo_without_a_reader_is_refused_not_waited_on(capfd, model, tmp_path):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    rc, _, err = run(capfd, "predict", model, ROWS, "-o", fifo)
    assert rc == 2 and "a FIFO with no reader" in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_symlinked_output_stays_a_link(capfd, model, tmp_path):
    (tmp_path / "real.csv").write_text("old\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    rc, _, _ = run(capfd, "predict", model, ROWS, "-o", tmp_path / "link.csv")
    assert rc == 0 and (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "real.csv").read_text().startswith("label,")


# --- outputs that are inputs -----------------------------------------------------------------


def test_training_over_its_own_spec_is_refused(capfd, tmp_path):
    spec = tmp_path / "iris.yaml"
    shutil.copy(IRIS, spec)
    before = spec.read_bytes()
    rc, _, err = run(capfd, "train", spec, "-o", spec)
    assert rc == 2 and "the model would overwrite the spec" in err
    assert spec.read_bytes() == before
    (tmp_path / "alias.onnx").symlink_to(spec)
    rc, _, err = run(capfd, "train", spec, "-o", tmp_path / "alias.onnx")
    assert rc == 2 and f"overwrite the spec ({spec})" in err
    assert spec.read_bytes() == before


def test_predictions_over_the_model_or_the_input_are_refused(capfd, model, tmp_path):
    m = tmp_path / "m.onnx"
    shutil.copy(model, m)
    rows = tmp_path / "x.csv"
    shutil.copy(ROWS, rows)
    before = m.read_bytes(), rows.read_bytes()
    for target, what in ((m, "the model"), (rows, "the input")):
        rc, _, err = run(capfd, "predict", m, rows, "-o", target)
        assert rc == 2 and f"the predictions would overwrite {what}" in err
    assert (m.read_bytes(), rows.read_bytes()) == before


def test_the_same_path_for_model_and_metrics_is_refused(capfd, tmp_path):
    rc, _, err = run(capfd, "train", IRIS, "-o", tmp_path / "a", "--metrics", tmp_path / "a")
    assert rc == 2 and "given as both the model and the metrics" in err
    assert not (tmp_path / "a").exists()


# --- locks -----------------------------------------------------------------------------------


def test_an_export_waits_for_another_export_to_the_same_path(tmp_path):
    network = nnspec.build_network(nnspec.load_spec(IRIS))
    target = tmp_path / "m.onnx"
    done = []
    with atomic.export_lock(target):
        t = threading.Thread(target=lambda: done.append(nnspec.export(network, target)))
        t.start()
        time.sleep(1.0)
        assert t.is_alive() and not target.exists() and not done  # waiting for the lock
    t.join(30)
    assert done and target.is_file()
    assert not (tmp_path / ".m.onnx.lock").exists()  # removed on release


def test_a_checkpoint_directory_in_use_is_refused_with_the_owners_pid(capfd, tmp_path):
    directory = tmp_path / "ckpt"
    directory.mkdir()
    owner = checkpoint.DirectoryOwner(directory)
    try:
        rc, _, err = run(
            capfd, "train", IRIS, "-o", tmp_path / "m.onnx", "--checkpoint", directory, "-q"
        )
    finally:
        owner.release()
    assert rc == 2 and f"in use by another training run (PID {os.getpid()})" in err
    assert not (tmp_path / "m.onnx").exists() and not list(directory.glob("checkpoint*"))
    rc, _, err = run(capfd, "train", IRIS, "-o", tmp_path / "m.onnx", "--checkpoint", directory)
    assert rc == 0, err  # released: the next run owns it


def test_a_regular_file_under_dev_shm_is_still_written_atomically(capfd, model):
    import tempfile

    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm here")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        out = Path(d) / "p.csv"
        rc, _, err = run(capfd, "predict", model, ROWS, "-o", out)
        assert rc == 0, err
        assert stat.S_ISREG(os.stat(out).st_mode) and out.read_text().startswith("label,")


def test_dev_fd_1_is_standard_output(capfd, model):
    rc, out, err = run(capfd, "predict", model, ROWS, "-o", "/dev/fd/1")
    assert rc == 0 and out.startswith("label,"), err
