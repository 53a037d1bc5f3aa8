"""Checkpoints from elsewhere (or tampered with, the NPZ's hash updated as a writer would):
non-finite arrays, an extra entry, a generator state that does not fit, JSON nested too deep;
each refused with exit code 2 before training, and no model written."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import rewrite_checkpoint_arrays

from nnspec import cli

SPEC = """spec_version: 1
name: iris-ck
task: classification
data: {builtin: iris, test_fraction: 0.2}
preprocess: {standardize: true}
layers:
  - {kind: dense, units: 6, activation: tanh}
  - {kind: dense, units: 3, activation: softmax}
loss: cross_entropy
train: {optimizer: {kind: sgd, lr: 0.1, momentum: 0.9}, batch_size: 16, epochs: 5, seed: 0,
        checkpoint_every: 2, validation_fraction: 0.1, early_stopping: {patience: 50}}
"""


@pytest.fixture
def checkpoint(tmp_path, capsys) -> tuple[Path, Path]:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    directory = tmp_path / "ck"
    args = ["train", str(spec), "-o", str(tmp_path / "first.onnx"), "--checkpoint", str(directory)]
    assert cli.main(args + ["-q"]) == 0
    capsys.readouterr()
    return spec, directory


def _resume(capsys, spec: Path, directory: Path, tmp_path: Path) -> str:
    out = tmp_path / "m.onnx"
    rc = cli.main(["train", str(spec), "-o", str(out), "--resume", str(directory), "-q"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and not out.exists()
    return err


def _set(key: str, value):
    def change(arrays):
        a = arrays[key].copy()
        a.flat[0] = value
        arrays[key] = a

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_set("best/dense_0.weight", np.nan), "best/dense_0.weight has a NaN or inf at index"),
        (_set("net/dense_1.bias", np.inf), "net/dense_1.bias has a NaN or inf"),
        (_set("pre/x_scale", np.inf), "pre/x_scale has a NaN or inf"),
        (_set("pre/x_scale", 0.0), "pre/x_scale: expected positive standard deviations"),
    ],
)
def test_non_finite_checkpoint_arrays_are_refused(checkpoint, tmp_path, capsys, change, message):
    spec, directory = checkpoint
    rewrite_checkpoint_arrays(directory, change)
    assert message in _resume(capsys, spec, directory, tmp_path)


def test_an_extra_entry_is_refused_before_it_is_decompressed(
    checkpoint, tmp_path, capsys, monkeypatch
):
    spec, directory = checkpoint
    meta = json.loads((directory / "checkpoint.json").read_text())
    npz = directory / meta["npz"]
    with zipfile.ZipFile(npz, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("extra.npy", bytes(2**20))
    meta["npz_sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()
    (directory / "checkpoint.json").write_text(json.dumps(meta))
    opened = []
    real = zipfile.ZipFile.open
    monkeypatch.setattr(
        zipfile.ZipFile,
        "open",
        lambda self, name, *a, **k: opened.append(name) or real(self, name, *a, **k),
    )
    assert "holds an unexpected array 'extra'" in _resume(capsys, spec, directory, tmp_path)
    assert opened == []


def test_a_generator_state_of_2_to_the_300_is_refused(checkpoint, tmp_path, capsys):
    spec, directory = checkpoint
    meta = json.loads((directory / "checkpoint.json").read_text())
    meta["shuffle_rng"]["state"]["state"] = 2**300
    (directory / "checkpoint.json").write_text(json.dumps(meta))
    assert "shuffle_rng: not a usable generator state" in _resume(capsys, spec, directory, tmp_path)


def test_a_deeply_nested_checkpoint_json_is_refused(checkpoint, tmp_path, capsys):
    spec, directory = checkpoint
    (directory / "checkpoint.json").write_text('{"format": ' + "[" * 50_000 + "]" * 50_000 + "}")
    err = _resume(capsys, spec, directory, tmp_path)
    assert "JSON nested over 64 levels deep" in err


def test_an_untampered_checkpoint_still_resumes(checkpoint, tmp_path, capsys):
    spec, directory = checkpoint
    out = tmp_path / "m.onnx"
    assert cli.main(["train", str(spec), "-o", str(out), "--resume", str(directory), "-q"]) == 0
    assert out.is_file()
