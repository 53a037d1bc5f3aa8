"""Checkpoints: interrupt anywhere, resume, and get bit-identical weights and history.

In-process tests stop training deterministically with ``stop``/``on_batch`` (the flag that
the SIGINT/SIGTERM handler sets); the subprocess tests send the real signals.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT
from helpers import rewrite_checkpoint_arrays as _rewrite_npz
from onnx import numpy_helper

import nnspec
from nnspec import cli, pipeline
from nnspec.training import checkpoint as ckpt
from nnspec.training.interrupt import StopRequest, TrainingInterrupted, stop_on_signals

# A small convnet on the 8x8 digits with everything that carries state between batches:
# Adam moments, two batchnorms (running statistics), two dropouts (their own RNG streams), a
# step schedule, weight decay, a validation split and early stopping (stops after epoch 11,
# best epoch 8, waiting from epoch 9 on). 19 batches per epoch, the last one of 59 samples.
CONV = """\
spec_version: 1
name: tiny-conv
task: classification
input: {shape: [1, 8, 8]}
data: {builtin: digits, test_fraction: 0.25}
preprocess: {standardize: true}
layers:
  - {kind: conv2d, filters: 4, kernel_size: 3, activation: relu}
  - {kind: batchnorm}
  - {kind: maxpool2d, kernel_size: 2}
  - {kind: flatten}
  - {kind: dropout, rate: 0.2}
  - {kind: dense, units: 16, activation: relu}
  - {kind: batchnorm}
  - {kind: dropout, rate: 0.3}
  - {kind: dense, units: 10, activation: softmax}
loss: cross_entropy
train:
  optimizer: {kind: adam, lr: 0.01}
  lr_schedule: {kind: step, step_size: 4, gamma: 0.5}
  batch_size: 64
  epochs: 25
  seed: 1
  weight_decay: 0.0001
  validation_fraction: 0.1
  early_stopping: {patience: 3, monitor: val_accuracy}
"""

# Iris with SGD momentum and a step schedule: 7 batches per epoch, early stopping on val_loss.
IRIS = (
    (ROOT / "specs" / "iris.yaml")
    .read_text()
    .replace(
        "early_stopping:", "lr_schedule: {kind: step, step_size: 10, gamma: 0.7}\n  early_stopping:"
    )
)

# MCycle for a regression epoch's running squared error; 7 batches per epoch.
MCYCLE = (ROOT / "specs" / "mcycle.yaml").read_text().replace("epochs: 2000", "epochs: 40")


def _spec(text: str) -> nnspec.Spec:
    return nnspec.load_spec(text)


def _interrupted(spec, directory, at, resume=None) -> TrainingInterrupted:
    """Train until after batch ``at`` = (epoch, batch), counted from 0, then stop."""
    stop = StopRequest()

    def on_batch(epoch, batch):
        if (epoch, batch) == at:
            stop.set()

    with pytest.raises(TrainingInterrupted) as info:
        pipeline.train(spec, checkpoint_dir=directory, resume=resume, stop=stop, on_batch=on_batch)
    return info.value


def _rows(history) -> list[dict]:
    """History rows without the wall-clock seconds."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history.epochs]


def _assert_same(result, reference) -> None:
    a, b = result.network.arrays(), reference.network.arrays()
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    for k in ("x_mean", "x_scale", "y_mean", "y_scale"):
        assert np.array_equal(getattr(result.network, k), getattr(reference.network, k)), k
    assert _rows(result.history) == _rows(reference.history)
    assert result.history.best_epoch == reference.history.best_epoch
    assert result.history.stopped_early == reference.history.stopped_early
    assert result.metrics == reference.metrics


@pytest.fixture(scope="module")
def conv_reference():
    result = pipeline.train(_spec(CONV))
    # The scenario the interruption points below rely on.
    assert (result.history.epochs_run, result.history.best_epoch) == (11, 8)
    assert result.history.stopped_early
    return result


@pytest.mark.parametrize(
    "at",
    [
        (0, 0),  # the very first batch
        (2, 7),  # mid-epoch
        (4, 18),  # the last batch of an epoch, before its validation and history row
        (9, 10),  # during early stopping's patience (epoch 9 did not improve)
        (10, 18),  # the last batch of the epoch that stops early
    ],
)
def test_conv_adam_dropout_batchnorm_resumes_bit_identical(tmp_path, conv_reference, at):
    spec = _spec(CONV)
    stopped = _interrupted(spec, tmp_path, at)
    assert (stopped.epoch, stopped.batch, stopped.batches) == (at[0] + 1, at[1] + 1, 19)
    assert stopped.exit_code == 130
    loaded = ckpt.read_checkpoint(tmp_path)
    assert loaded.meta.position.epoch == at[0] and loaded.meta.position.batch == at[1] + 1
    if at == (9, 10):
        assert loaded.meta.waited == 1 and loaded.meta.has_best
    _assert_same(pipeline.train(spec, resume=loaded), conv_reference)


def test_resume_of_a_resumed_run_is_still_identical(tmp_path, conv_reference):
    spec = _spec(CONV)
    _interrupted(spec, tmp_path, (1, 3))
    _interrupted(spec, tmp_path, (6, 12), resume=ckpt.read_checkpoint(tmp_path))
    _assert_same(pipeline.train(spec, resume=ckpt.read_checkpoint(tmp_path)), conv_reference)


def test_periodic_checkpoints_resume_and_only_the_latest_is_kept(tmp_path, conv_reference):
    # checkpoint_every changes no number: the reference without it applies.
    spec = _spec(CONV.replace("  seed: 1\n", "  seed: 1\n  checkpoint_every: 3\n"))
    _assert_same(pipeline.train(spec, checkpoint_dir=tmp_path), conv_reference)
    # Written after epochs 3, 6 and 9; training then stopped early after epoch 11.
    loaded = ckpt.read_checkpoint(tmp_path)
    assert (loaded.meta.reason, loaded.meta.position.epoch) == ("periodic", 9)
    assert loaded.meta.position.batch == 0 and not loaded.meta.position.order_drawn
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".npz"] == [loaded.meta.npz]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    _assert_same(pipeline.train(spec, resume=loaded), conv_reference)


@pytest.mark.parametrize("at", [(0, 0), (5, 3), (12, 6), (40, 0)])
def test_iris_sgd_momentum_step_schedule_resumes_bit_identical(tmp_path, at):
    spec = _spec(IRIS)
    reference = pipeline.train(spec)
    assert reference.history.stopped_early and reference.history.epochs_run > 41
    _interrupted(spec, tmp_path, at)
    loaded = ckpt.read_checkpoint(tmp_path)
    assert set(k.split("/")[1] for k in loaded.arrays if k.startswith("opt/")) == {"velocity"}
    _assert_same(pipeline.train(spec, resume=loaded), reference)


def test_regression_running_error_resumes_bit_identical(tmp_path):
    spec = _spec(MCYCLE)
    reference = pipeline.train(spec)
    _interrupted(spec, tmp_path, (17, 2))
    loaded = ckpt.read_checkpoint(tmp_path)
    assert loaded.arrays["loop/sq_err"].dtype == np.float64
    _assert_same(pipeline.train(spec, resume=loaded), reference)


def test_checkpoint_files_hold_the_whole_state_without_pickle(tmp_path):
    spec = _spec(CONV)
    _interrupted(spec, tmp_path, (9, 10))
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    npz = tmp_path / meta["npz"]
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert all(a.dtype != object for a in arrays.values())
    names = set(arrays)
    assert {"net/batchnorm_1.running_mean", "net/batchnorm_6.running_var"} <= names
    assert {"pre/x_mean", "pre/x_scale", "loop/order"} <= names
    assert {"opt/m/dense_8.weight", "opt/v/conv2d_0.weight", "best/dense_5.bias"} <= names
    assert arrays["loop/order"].shape == (1211,)
    assert meta["spec_sha256"] == spec.source.sha256
    assert meta["adam_t"] == 9 * 19 + 11
    assert set(meta["layer_rngs"]) == {"dropout_4", "dropout_7"}
    assert meta["shuffle_rng"]["bit_generator"] == "PCG64"
    assert (meta["position"]["epoch"], meta["position"]["batch"]) == (9, 11)
    assert len(meta["history"]) == 9 and meta["best_epoch"] == 8 and meta["waited"] == 1


# -- errors through the command line ---------------------------------------------------------
@pytest.fixture
def iris_checkpoint(tmp_path):
    """An iris spec file and a checkpoint of it, stopped in epoch 3."""
    spec_path = tmp_path / "iris.yaml"
    spec_path.write_text(IRIS)
    directory = tmp_path / "ck"
    _interrupted(nnspec.load_spec(spec_path), directory, (2, 3))
    return spec_path, directory


def _main(capsys, *args) -> tuple[int, str]:
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_cli_resume_completes_identically(iris_checkpoint, tmp_path, capsys):
    spec_path, directory = iris_checkpoint
    code, _ = _main(capsys, "train", spec_path, "-o", tmp_path / "a.onnx", "--resume", directory)
    assert code == 0
    code, _ = _main(capsys, "train", spec_path, "-o", tmp_path / "b.onnx")
    assert code == 0
    assert _initializers(tmp_path / "a.onnx") == _initializers(tmp_path / "b.onnx")


def test_foreign_spec_is_refused(iris_checkpoint, tmp_path, capsys):
    _, directory = iris_checkpoint
    other = tmp_path / "other.yaml"
    other.write_text(IRIS.replace("seed: 0", "seed: 1"))
    code, err = _main(capsys, "train", other, "-o", tmp_path / "m.onnx", "--resume", directory)
    assert code == 2
    assert f"{directory / 'checkpoint.json'}: written for another spec" in err
    assert not (tmp_path / "m.onnx").exists()


def test_missing_checkpoint(iris_checkpoint, tmp_path, capsys):
    spec_path, _ = iris_checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = _main(capsys, "train", spec_path, "-o", tmp_path / "m.onnx", "--resume", empty)
    assert code == 2 and "no checkpoint there (expected" in err
    npz = next(iris_checkpoint[1].glob("*.npz"))
    code, err = _main(capsys, "train", spec_path, "-o", tmp_path / "m.onnx", "--resume", npz)
    assert code == 2 and "expected a checkpoint directory or the checkpoint.json in it" in err


def test_checkpoint_json_path_is_accepted(iris_checkpoint, tmp_path, capsys):
    spec_path, directory = iris_checkpoint
    json_path = directory / "checkpoint.json"
    code, _ = _main(capsys, "train", spec_path, "-o", tmp_path / "m.onnx", "--resume", json_path)
    assert code == 0 and (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: _truncate(d / "checkpoint.json"), "not valid JSON"),
        (lambda d: _truncate(next(d.glob("*.npz"))), "its sha256 differs from the one"),
        (lambda d: next(d.glob("*.npz")).unlink(), "cannot read the checkpoint's arrays"),
        (lambda d: _edit_json(d, lambda m: m.update(npz="../../etc/passwd")), "npz: expected"),
        (lambda d: _edit_json(d, lambda m: m["position"].update(batch=-1)), "position.batch"),
        (lambda d: _edit_json(d, lambda m: m.update(format="zip")), "not an nnspec checkpoint"),
        (
            lambda d: _edit_json(d, lambda m: m["shuffle_rng"].update(bit_generator="MT")),
            "shuffle_rng: not a usable generator state",
        ),
        (
            lambda d: _rewrite_npz(
                d, lambda a: a.update({"net/dense_0.weight": np.zeros((4, 11), np.float32)})
            ),
            "net/dense_0.weight: expected float32 of shape (4, 10), got float32 of shape (4, 11)",
        ),
        (
            lambda d: _rewrite_npz(d, lambda a: a.pop("opt/velocity/dense_1.bias")),
            "missing",
        ),
        (
            lambda d: _rewrite_npz(d, lambda a: a.update({"loop/order": np.zeros(108, int)})),
            "loop/order: expected a permutation",
        ),
        (
            # An object array could only be rebuilt by pickle, which is never used.
            lambda d: _rewrite_npz(d, lambda a: a.update({"net/x": np.array([{}], object)})),
            "cannot load without pickle",
        ),
    ],
)
def test_damaged_checkpoints_are_located_errors(iris_checkpoint, tmp_path, capsys, damage, message):
    spec_path, directory = iris_checkpoint
    damage(directory)
    code, err = _main(capsys, "train", spec_path, "-o", tmp_path / "m.onnx", "--resume", directory)
    assert code == 2
    assert message in err
    assert str(directory) in err  # located: the file it is about
    assert not (tmp_path / "m.onnx").exists()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_json(directory: Path, change) -> None:
    meta = json.loads((directory / "checkpoint.json").read_text())
    change(meta)
    (directory / "checkpoint.json").write_text(json.dumps(meta))


def test_checkpoint_every_needs_a_directory(tmp_path, capsys):
    spec_path = tmp_path / "iris.yaml"
    spec_path.write_text(IRIS.replace("  seed: 0\n", "  seed: 0\n  checkpoint_every: 5\n"))
    start = time.perf_counter()
    code, err = _main(capsys, "train", spec_path, "-o", tmp_path / "m.onnx")
    assert code == 2 and time.perf_counter() - start < 5
    assert f"{spec_path}:16:21: train.checkpoint_every: needs a directory" in err
    assert "--checkpoint DIR" in err


def test_checkpoint_dir_that_is_a_file(tmp_path, capsys):
    spec_path = tmp_path / "iris.yaml"
    spec_path.write_text(IRIS)
    (tmp_path / "f").write_text("")
    code, err = _main(
        capsys, "train", spec_path, "-o", tmp_path / "m.onnx", "--checkpoint", tmp_path / "f"
    )
    assert code == 2 and "expected a directory, got a file" in err


def test_signal_handlers_are_restored():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert signal.getsignal(signal.SIGINT) not in before
        signal.raise_signal(signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C does not wait
            signal.raise_signal(signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# -- real signals, real processes ------------------------------------------------------------
# Digits MLP with dropout: about 1.5 s of training, a periodic checkpoint after every epoch.
SLOW = """\
spec_version: 1
name: digits-long
task: classification
data: {builtin: digits, test_fraction: 0.25}
preprocess: {standardize: true}
layers:
  - {kind: dense, units: 32, activation: relu}
  - {kind: dropout, rate: 0.2}
  - {kind: dense, units: 10, activation: softmax}
loss: cross_entropy
train:
  optimizer: {kind: adam, lr: 0.002}
  batch_size: 32
  epochs: 60
  seed: 0
  checkpoint_every: 1
"""


def _initializers(path: Path) -> dict[str, bytes]:
    model = onnx.load(str(path))
    return {
        t.name: numpy_helper.to_array(t).tobytes() + str(numpy_helper.to_array(t).dtype).encode()
        for t in model.graph.initializer
    }


@pytest.fixture(scope="module")
def slow_spec(tmp_path_factory):
    """The spec file, and the model of an uninterrupted run of it."""
    tmp = tmp_path_factory.mktemp("slow")
    spec_path = tmp / "slow.yaml"
    spec_path.write_text(SLOW)
    # The spec needs --checkpoint for checkpoint_every; the directory changes no number.
    assert (
        cli.main(
            [
                "train",
                str(spec_path),
                "-o",
                str(tmp / "ref.onnx"),
                "-q",
                "--checkpoint",
                str(tmp / "ck"),
            ]
        )
        == 0
    )
    return spec_path, _initializers(tmp / "ref.onnx")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_checkpoint_and_resume_matches(tmp_path, slow_spec, signum, code):
    spec_path, reference = slow_spec
    model, directory = tmp_path / "m.onnx", tmp_path / "ck"
    args = [sys.executable, "-m", "nnspec", "train", str(spec_path), "-o", str(model)]
    proc = subprocess.Popen(
        [*args, "--checkpoint", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        # The first periodic checkpoint shows the signal handlers are in place.
        while not (directory / "checkpoint.json").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert "interrupted at epoch " in err and f"checkpoint written to {directory}" in err
    assert f"resume with: nnspec train {spec_path} -o {model} --resume {directory}" in err
    assert not model.exists()
    loaded = ckpt.read_checkpoint(directory)
    assert loaded.meta.reason == "interrupted" and loaded.meta.position.epoch < 59
    with zipfile.ZipFile(directory / loaded.meta.npz) as z:
        assert all(name.endswith(".npy") for name in z.namelist())

    out = subprocess.run(
        [*args, "--resume", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert f"resumed from epoch {loaded.meta.position.epoch + 1}" in out.stdout
    assert _initializers(model) == reference
