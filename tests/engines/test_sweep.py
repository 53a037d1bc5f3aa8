"""``nnspec sweep``: the sweep: block's located errors, trials as complete specs, the same
table from the local process pool and a Dask LocalCluster, a diverged trial recorded while
the sweep goes on, resume, and the best trial's export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT

from nnspec.cli import main

IRIS = """spec_version: 1
name: iris-sweep
task: classification
data: {builtin: iris, test_fraction: 0.2}
layers:
  - {kind: dense, units: 10, activation: logistic}
  - {kind: dense, units: 3, activation: softmax}
loss: cross_entropy
train:
  optimizer: {kind: sgd, lr: 0.1, momentum: 0.9}
  batch_size: 16
  epochs: 40
  validation_fraction: 0.2
"""


def run(capfd, *args):
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str, name="sweep.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def table(path: Path) -> list[dict]:
    """summary.csv without its seconds column (the one thing that differs between runs)."""
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        r.pop("seconds")
    return rows


GRID = (
    IRIS
    + """sweep:
  method: grid
  metric: val_loss
  space:
    train.optimizer.lr: [0.01, 0.3]
    layers[0].units: [4, 16]
"""
)


@pytest.mark.parametrize(
    "block, where, message",
    [
        (
            "  space:\n    train.optimizer.lr: [0.1, -1]\n",
            ":16:31: sweep.space.train.optimizer.lr[1]",
            "the value -1 gives an invalid spec: train.optimizer.lr: expected a positive number",
        ),
        (
            "  space:\n    layers[5].units: [3]\n",
            ":16:5: sweep.space.layers[5].units",
            "layers has 2 items, so there is no [5]",
        ),
        (
            "  space:\n    train..lr: [3]\n",
            ":16:5: sweep.space.train..lr",
            "expected a path into the spec such as train.optimizer.lr",
        ),
        (
            "  space:\n    layers[0].unitz: [3]\n",
            ":16:23: sweep.space.layers[0].unitz[0]",
            "unknown key 'unitz'; did you mean 'units'?",
        ),
        (
            "  metric: val_r2\n  space:\n    layers[0].units: [3]\n",
            ":15:11: sweep.metric",
            "val_r2 is a regression metric, but the task is classification",
        ),
        (
            "  space:\n    layers[0].units: {low: 2, high: 20}\n",
            ":16:22: sweep.space.layers[0].units",
            "a range {low, high} is drawn from by method: random",
        ),
        (
            "  method: random\n  space:\n    layers[0].units: [3]\n",
            ":15:3: sweep",
            "method: random needs trials: N",
        ),
        (
            "  space:\n    layers[0].units: 7\n",
            ":16:22: sweep.space.layers[0].units",
            "expected a list of values to try, or (method: random) a range {low, high}, got 7",
        ),
    ],
)
def test_sweep_block_errors_are_located(capfd, tmp_path, block, where, message):
    spec = write(tmp_path, IRIS + "sweep:\n" + block)
    for command in ("validate", "sweep"):
        args = [command, spec] + (["-o", tmp_path / "r"] if command == "sweep" else [])
        code, _, err = run(capfd, *args)
        assert code == 2 and "Traceback" not in err
        assert f"{spec}{where}" in err and message in err, err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("*.json"))


def test_validation_split_is_required(capfd, tmp_path):
    spec = write(
        tmp_path,
        IRIS.replace("  validation_fraction: 0.2\n", "")
        + "sweep:\n  space:\n    layers[0].units: [3]\n",
    )
    code, _, err = run(capfd, "validate", spec)
    assert code == 2 and "sweep.metric: val_loss is measured on the validation split" in err


def test_grid_sweep_local_pool_and_dask_give_the_same_table(capfd, tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    spec = write(tmp_path, GRID)
    code, out, err = run(capfd, "sweep", spec, "-o", tmp_path / "local", "--workers", 2)
    assert code == 0, err
    assert "4 trials (4 ok)" in out and "best: trial" in out
    code, out2, err = run(
        capfd, "sweep", spec, "-o", tmp_path / "dask", "--engine", "dask", "--workers", 2
    )
    assert code == 0, err
    local, dask = (
        table(tmp_path / "local" / "summary.csv"),
        table(tmp_path / "dask" / "summary.csv"),
    )
    assert local == dask  # training is deterministic: the same metric to the last digit
    assert [(r["train.optimizer.lr"], r["layers[0].units"]) for r in local] == [
        ("0.01", "4"),
        ("0.01", "16"),
        ("0.3", "4"),
        ("0.3", "16"),
    ]
    for n in range(1, 5):  # the same weights, whichever engine trained them
        a = (tmp_path / "local" / "trials" / f"{n:03d}.onnx").read_bytes()
        assert a == (tmp_path / "dask" / "trials" / f"{n:03d}.onnx").read_bytes()
    # The best trial is the lowest val_loss, and its model is the one exported.
    best = min(local, key=lambda r: float(r["val_loss"]))
    assert f"best: trial {best['trial']}" in out
    res = tmp_path / "local"
    assert (res / "best.onnx").read_bytes() == (
        res / "trials" / f"{best['trial']}.onnx"
    ).read_bytes()
    meta = {p.key: p.value for p in onnx.load(res / "best.onnx").metadata_props}
    assert json.loads(meta["nnspec_parity"])["max_abs_err"] < 1e-5
    assert (res / "val_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_trial_is_a_complete_spec_that_trains_to_the_same_result(capfd, tmp_path):
    """A trial file is a spec on its own: ``nnspec train`` of it gives the trial's model."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "iris.csv").write_text((ROOT / "nnspec" / "data" / "datasets" / "iris.csv").read_text())
    text = GRID.replace(
        "{builtin: iris, test_fraction: 0.2}", "{csv: data/iris.csv, target: species}"
    )
    spec = write(tmp_path, text)
    code, _, err = run(capfd, "sweep", spec, "-o", tmp_path / "res", "--workers", 1, "-q")
    assert code == 0, err
    trial = tmp_path / "res" / "trials" / "002.yaml"
    body = trial.read_text()
    assert "sweep:" not in body and "seed: 0" in body and "units: 16" in body
    assert "csv: ../../data/iris.csv" in body  # relative to the trial file, so it is found
    code, _, err = run(capfd, "train", trial, "-o", tmp_path / "again.onnx", "-q")
    assert code == 0, err
    want = onnx.load(tmp_path / "res" / "trials" / "002.onnx").graph.initializer
    got = onnx.load(tmp_path / "again.onnx").graph.initializer
    for a, b in zip(want, got, strict=True):
        assert np.array_equal(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b))


def test_a_diverged_trial_is_recorded_and_the_sweep_goes_on_and_resumes(capfd, tmp_path):
    text = (ROOT / "specs" / "mcycle.yaml").read_text().replace("epochs: 2000", "epochs: 30")
    text = text.replace("  seed: 0\n", "  seed: 0\n  validation_fraction: 0.2\n")
    text += (
        "sweep:\n  metric: val_mse\n  space:\n"
        "    train.optimizer: [{kind: adam, lr: 0.05}, {kind: sgd, lr: 100.0}, "
        "{kind: sgd, lr: 0.05}]\n"
    )
    spec = write(tmp_path, text)
    out = tmp_path / "res"
    code, stdout, err = run(capfd, "sweep", spec, "-o", out, "--workers", 2)
    assert code == 0, err
    rows = table(out / "summary.csv")
    assert [r["status"] for r in rows] == ["ok", "diverged", "ok"]
    assert "training diverged" in rows[1]["message"] and rows[1]["val_mse"] == ""
    assert "trial 002 diverged" in stdout
    assert not (out / "trials" / "002.onnx").exists()
    # Interrupted after trial 1: trials 2 and 3 are run again, trial 1 is not.
    (out / "trials" / "002.json").unlink()
    (out / "trials" / "003.json").unlink()
    first = (out / "trials" / "001.json").stat().st_mtime_ns
    code, stdout, err = run(capfd, "sweep", spec, "-o", out, "--workers", 1)
    assert code == 0, err
    assert "1 from an earlier run" in stdout
    assert (out / "trials" / "001.json").stat().st_mtime_ns == first
    assert table(out / "summary.csv") == rows
    # A changed sweep is not mixed into these results.
    spec.write_text(text.replace("lr: 100.0", "lr: 50.0"))
    code, _, err = run(capfd, "sweep", spec, "-o", out)
    assert code == 2 and "holds another trial than this sweep's trial 2" in err


def test_random_sweep_draws_from_its_seed(capfd, tmp_path):
    spec = write(
        tmp_path,
        IRIS.replace("epochs: 40", "epochs: 5")
        + "sweep:\n  method: random\n  trials: 5\n  seed: 7\n  metric: val_accuracy\n"
        "  space:\n    train.optimizer.lr: {low: 0.001, high: 1.0, log: true}\n"
        "    layers[0].units: {low: 2, high: 30, integer: true}\n"
        "    train.batch_size: [8, 32]\n",
    )
    assert run(capfd, "sweep", spec, "-o", tmp_path / "a", "--workers", 1, "-q")[0] == 0
    assert run(capfd, "sweep", spec, "-o", tmp_path / "b", "--workers", 1, "-q")[0] == 0
    rows = table(tmp_path / "a" / "summary.csv")
    assert rows == table(tmp_path / "b" / "summary.csv") and len(rows) == 5
    lrs = [float(r["train.optimizer.lr"]) for r in rows]
    units = [r["layers[0].units"] for r in rows]
    assert all(0.001 <= v <= 1.0 for v in lrs) and len(set(lrs)) == 5
    assert all(u.isdigit() and 2 <= int(u) <= 30 for u in units)
    assert {r["train.batch_size"] for r in rows} <= {"8", "32"}


def _imported_at_start() -> dict:
    import os
    import sys

    return {
        "pid": os.getpid(),
        "modules": sorted(
            m for m in ("onnx", "onnxruntime", "nnspec.pipeline") if m in sys.modules
        ),
    }


def test_pool_workers_start_with_a_trials_imports_done():
    # A spawned worker spent ~2 s importing before its first 0.1 s trial; the pool's workers
    # fork from a server that imported once (on platforms that have one), in a fresh process.
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from nnspec.engines import sweep

    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork server on this platform: the pool spawns its workers")
    ctx = sweep._pool_context()
    assert ctx.get_start_method() == "forkserver"
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        seen = pool.submit(_imported_at_start).result()
    assert seen["pid"] != os.getpid()
    assert seen["modules"] == ["nnspec.pipeline", "onnx", "onnxruntime"]
