"""Outputs are atomic: ``kill -9`` an export or a training at random moments; afterwards every
file at its destination is either absent or complete and loadable, and what is left behind
(temporary files) never has a destination's name.

Kill moments are seeded random delays: some spread over the whole run (whose duration is
measured first), most in its last part where the files are written, and some timed from the
moment the first temporary file appears (mid-write). The fast tests do a handful of kills; the
``slow`` one does dozens.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxruntime
import pytest
from conftest import ROOT

SPECS = ROOT / "specs"

# Runs the CLI with protobuf's 2 GB limit lowered, so that a tiny model is written as a model
# file plus its external data file (``<name>.data``), as a model over 2 GB is.
EXTERNAL_DRIVER = """
import importlib, sys
importlib.import_module("nnspec.onnxio.lower").MAX_PROTOBUF = 10_000
from nnspec.cli.commands import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass(frozen=True)
class Job:
    label: str
    argv: tuple[str, ...]  # after the interpreter; {out} is the output directory
    models: tuple[str, ...]  # ONNX files it writes
    metrics: tuple[str, ...] = ()  # JSON files it writes
    external: bool = False  # the models come with <name>.data

    def start(self, out: Path) -> subprocess.Popen:
        argv = [a.format(out=out) for a in self.argv]
        return subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def destinations(self) -> set[str]:
        data = {f"{m}.data" for m in self.models} if self.external else set()
        return {*self.models, *self.metrics, *data}


ALEXNET = Job(
    "compile alexnet",
    ("-m", "nnspec", "compile", str(SPECS / "alexnet.yaml"), "-o", "{out}/a.onnx"),
    ("a.onnx",),
)
DIGITS = Job(
    "train digits",
    (
        "-m",
        "nnspec",
        "train",
        str(SPECS / "digits.yaml"),
        "-o",
        "{out}/d.onnx",
        "--metrics",
        "{out}/d.json",
        "-q",
    ),
    ("d.onnx",),
    ("d.json",),
)
EXTERNAL = Job(
    "train iris, external data",
    (
        "-c",
        EXTERNAL_DRIVER,
        "train",
        str(SPECS / "iris.yaml"),
        "-o",
        "{out}/m.onnx",
        "--metrics",
        "{out}/m.json",
        "-q",
    ),
    ("m.onnx",),
    ("m.json",),
    external=True,
)


def _entries(out: Path) -> list[str]:
    try:
        return os.listdir(out)
    except FileNotFoundError:
        return []


def _hidden(out: Path) -> bool:
    """A temporary file or directory of an atomic write is there."""
    return any(name.startswith(".") for name in _entries(out))


def measure(job: Job, out: Path) -> tuple[float, float, float]:
    """One whole run: its duration, when its first file (temporary or not) appeared, and when
    the last of its destinations did."""
    out.mkdir()
    start = time.perf_counter()
    proc = job.start(out)
    first_file = done = None
    while proc.poll() is None:
        now = time.perf_counter() - start
        if first_file is None and _entries(out):
            first_file = now
        if done is None and job.destinations <= set(os.listdir(out)):
            done = now
        time.sleep(0.002)
    duration = time.perf_counter() - start
    assert proc.returncode == 0, f"{job.label} failed with exit code {proc.returncode}"
    state = check(job, out)
    assert state == tuple(sorted(job.destinations)), state
    return duration, first_file or duration, done or duration


def kill_at(job: Job, out: Path, delay: float, after_temp: bool = False) -> tuple[str, ...]:
    """Start ``job``, SIGKILL it ``delay`` s after its start (or after its first file, temporary
    or not, appears), and check what it left. Returns the destinations present, and
    'mid-write' when a temporary file was there at the kill."""
    out.mkdir()
    proc = job.start(out)
    if after_temp:
        while proc.poll() is None and not _entries(out):
            time.sleep(0.001)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        pass
    mid_write = proc.poll() is None and _hidden(out)
    proc.kill()  # SIGKILL: no cleanup, no finally blocks
    proc.wait()
    return check(job, out) + (("mid-write",) if mid_write else ())


def check(job: Job, out: Path) -> tuple[str, ...]:
    """Every destination absent or complete; leftovers hidden and never a destination's name."""
    present = set()
    for entry in os.listdir(out):
        if entry in job.destinations:
            present.add(entry)
        else:
            # A temporary file (.<name>.XXXX.tmp) or directory (.<name>.XXXX) of a write.
            assert entry.startswith("."), f"left behind {entry!r}, not a temporary name"
            assert entry.lstrip(".") not in job.destinations, entry
    for name in job.models:
        if name in present:
            if job.external:
                assert f"{name}.data" in present, f"{name} without its {name}.data"
            model = onnx.load(str(out / name))  # with its external data, when it has some
            assert model.graph.output
            onnxruntime.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
    for name in job.metrics:
        if name in present:
            metrics = json.loads((out / name).read_text())
            assert metrics["parity"]["max_abs_err"] >= 0 and metrics["history"]
    return tuple(sorted(present))


def _run_kills(job: Job, tmp: Path, rng: random.Random, spread: int, late: int, temp: int):
    """Measure one run, then kill runs at ``spread`` moments over its whole duration, ``late``
    moments around its writes (from just before its first file appears to just after its last
    destination does), and ``temp`` moments timed from its first file's appearance."""
    duration, first_file, done = measure(job, tmp / "measure")
    moments = [(rng.uniform(0, duration), False) for _ in range(spread)]
    moments += [(rng.uniform(first_file - 0.1, done + 0.05), False) for _ in range(late)]
    moments += [(rng.uniform(0, max(done - first_file, 0.01)), True) for _ in range(temp)]
    outcomes = Counter()
    for i, (delay, after_temp) in enumerate(moments):
        outcomes[kill_at(job, tmp / f"kill{i}", delay, after_temp)] += 1
    print(
        f"\n{job.label}: {duration:.2f} s, first file at "
        f"{first_file:.2f} s, all written at {done:.2f} s; outcomes: {dict(outcomes)}"
    )
    return outcomes


# --- Fast: a handful of kills ------------------------------------------------------------------


def test_kill_alexnet_compile(tmp_path):
    """245 MB written in one go: killed while writing (just after its first file, the
    temporary one, appears), and once at a random moment before."""
    rng = random.Random(1)
    first = kill_at(ALEXNET, tmp_path / "k0", rng.uniform(0, 0.05), after_temp=True)
    second = kill_at(ALEXNET, tmp_path / "k1", rng.uniform(0.5, 4.0))
    # Killed mid-write, nothing is at the destination (unless this machine wrote 245 MB in
    # under 50 ms, when the file is there and complete).
    assert first in (("mid-write",), ("a.onnx",)), first
    assert second in ((), ("a.onnx",)), second


def test_kill_training_with_metrics(tmp_path):
    outcomes = _run_kills(DIGITS, tmp_path, random.Random(2), spread=1, late=2, temp=0)
    assert sum(outcomes.values()) == 3


def test_kill_training_with_external_data(tmp_path):
    outcomes = _run_kills(EXTERNAL, tmp_path, random.Random(3), spread=1, late=2, temp=1)
    assert sum(outcomes.values()) == 4


# --- Slow: dozens of kills ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "job,seed,counts",
    [
        pytest.param(ALEXNET, 10, (6, 10, 8), id="alexnet-compile"),
        pytest.param(DIGITS, 11, (10, 15, 15), id="digits-train"),
        pytest.param(EXTERNAL, 12, (10, 15, 15), id="external-data-train"),
    ],
)
def test_kill_at_many_moments(tmp_path, job, seed, counts):
    outcomes = _run_kills(job, tmp_path, random.Random(seed), *counts)
    states = {tuple(s for s in o if s != "mid-write") for o in outcomes}
    assert () in states  # some kills came before anything was in place
    if job is ALEXNET:  # writing 245 MB takes long enough to be caught in the act
        assert any("mid-write" in o for o in outcomes), outcomes


# --- Overwriting a model that has external data ----------------------------------------------

# Dies (SIGKILL) at the rename of the model file into place, after its data file was renamed.
DIE_BETWEEN_RENAMES = """
import importlib, os, signal, sys
from pathlib import Path
importlib.import_module("nnspec.onnxio.lower").MAX_PROTOBUF = 10_000
target = Path(sys.argv[-1]).resolve()
real = os.replace
def replace(src, dst):
    if Path(dst).resolve() == target:
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
from nnspec.cli.commands import main
sys.exit(main(sys.argv[1:]))
"""


def test_overwriting_an_external_data_model_is_never_mixed(tmp_path):
    def compile_(out: Path, units: int, driver: str = EXTERNAL_DRIVER) -> int:
        spec = tmp_path / f"s{units}.yaml"
        spec.write_text((SPECS / "iris.yaml").read_text().replace("units: 10", f"units: {units}"))
        argv = [sys.executable, "-c", driver, "compile", str(spec), "-o", str(out / "m.onnx")]
        return subprocess.run(argv, cwd=ROOT, capture_output=True).returncode

    for name in ("old", "new", "dest"):
        (tmp_path / name).mkdir()
    assert compile_(tmp_path / "old", 10) == 0 and compile_(tmp_path / "dest", 10) == 0
    assert compile_(tmp_path / "new", 12) == 0
    assert compile_(tmp_path / "dest", 12, DIE_BETWEEN_RENAMES) == -signal.SIGKILL

    def pair(d: Path) -> tuple[bytes, bytes]:
        return (d / "m.onnx").read_bytes(), (d / "m.onnx.data").read_bytes()

    # Killed between the data's rename and the model's: the old model was removed first, so
    # there is no model at all rather than the old one reading the new weights.
    dest = tmp_path / "dest"
    assert not (dest / "m.onnx").exists()
    assert compile_(dest, 12) == 0  # the next write completes the pair
    assert pair(dest) == pair(tmp_path / "new")
