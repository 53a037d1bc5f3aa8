"""Throughput and latency of a model in onnxruntime (``nnspec bench``, ``bench/gpu_proof.py``).

Three paths are timed: ``run`` (``Model.run``: NumPy in and out, inputs checked, copies to
and from the device), ``session`` (onnxruntime's ``session.run`` on NumPy, unchecked, one
run: what a hand-written caller gets) and ``iobinding`` (inputs and outputs stay on the
device; only the runs are timed).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

PATHS = {
    "run": "Model.run (NumPy in/out, checked)",
    "session": "session.run (NumPy in/out, unchecked)",
    "iobinding": "IOBinding (device in/out)",
}


@dataclass(frozen=True)
class BenchResult:
    """Per-call wall times of one (model, batch, path); throughput in samples/s."""

    batch: int
    path: str
    device: str
    provider: str
    chunk_size: int
    warmup: int
    seconds: tuple[float, ...]

    @property
    def throughput(self) -> float:
        return self.batch * len(self.seconds) / sum(self.seconds)

    def latency_ms(self, q: float) -> float:
        """The q-th percentile (0-100) of one call's wall time, in milliseconds."""
        return float(np.percentile(self.seconds, q)) * 1e3

    def as_dict(self) -> dict:
        d = asdict(self)
        d["seconds"] = list(self.seconds)
        d["runs"] = len(self.seconds)
        d["samples_per_s"] = self.throughput
        d.update({f"p{q}_ms": self.latency_ms(q) for q in (50, 90, 99)})
        return d


def inputs(model, batch: int, seed: int = 0) -> np.ndarray:
    """(batch, *input_shape) float32 standard normal values; a large batch repeats a block of
    1024 rows, which costs no more to run and much less to make."""
    rng = np.random.default_rng(seed)
    block = rng.standard_normal((min(batch, 1024), *model.input_shape), dtype=np.float32)
    reps = math.ceil(batch / len(block))
    return np.concatenate([block] * reps)[:batch] if reps > 1 else block


def even_chunks(batch: int, limit: int) -> int:
    """The chunk size that splits ``batch`` rows into the fewest equal runs of at most
    ``limit`` rows (65536 rows under a limit of 65535: two of 32768, not 65535 and 1)."""
    return math.ceil(batch / math.ceil(batch / limit))


def measure(
    model,
    batch: int,
    path: str = "run",
    *,
    repeats: int = 30,
    warmup: int = 3,
    max_seconds: float | None = None,
    seed: int = 0,
) -> BenchResult:
    """Time ``repeats`` calls of ``path`` (see ``PATHS``) on ``batch`` rows, after
    ``warmup`` untimed calls; stop sooner once ``max_seconds`` have been timed (3 calls at
    least)."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    if batch < 1 or repeats < 1 or warmup < 0:
        raise ValueError(
            f"expected batch >= 1, repeats >= 1, warmup >= 0, got {batch}, {repeats}, {warmup}"
        )
    x = inputs(model, batch, seed)
    if path == "iobinding":
        call = model.bind(x, keep_on_device=True).run  # x is copied to the device once
    elif path == "session":
        if batch > model.chunk_size:
            raise ValueError(
                f"the session path runs one chunk: expected batch <= {model.chunk_size}, got "
                f"{batch}"
            )
        feeds = {model.input_name: x}
        call = lambda: model.session.run(None, feeds)  # noqa: E731
    else:
        call = lambda: model.run(x)  # noqa: E731
    seconds = time_calls(call, repeats=repeats, warmup=warmup, max_seconds=max_seconds)
    return BenchResult(batch, path, model.device, model.provider, model.chunk_size, warmup, seconds)


def time_calls(
    call, *, repeats: int, warmup: int, max_seconds: float | None = None, sync=None
) -> tuple[float, ...]:
    """Wall seconds of ``repeats`` calls of ``call()`` after ``warmup`` untimed ones; fewer
    once ``max_seconds`` have been timed (3 calls at least). ``sync()``, if given, runs after
    each call, inside its time (a GPU framework's wait for its queued work)."""
    for _ in range(warmup):
        call()
    if sync:
        sync()
    seconds = []
    total = 0.0
    while len(seconds) < repeats:
        start = time.perf_counter()
        call()
        if sync:
            sync()
        seconds.append(time.perf_counter() - start)
        total += seconds[-1]
        if max_seconds is not None and total >= max_seconds and len(seconds) >= 3:
            break
    return tuple(seconds)


def table(results: list[BenchResult]) -> str:
    """Fixed-width text: one line per result."""
    head = f"{'batch':>7}  {'path':<9}  {'samples/s':>13}  {'p50 ms':>9}  {'p90 ms':>9}  "
    head += f"{'p99 ms':>9}  {'runs':>5}  {'chunk':>6}"
    lines = [head]
    for r in results:
        lines.append(
            f"{r.batch:>7}  {r.path:<9}  {r.throughput:>13,.0f}  {r.latency_ms(50):>9.3f}  "
            f"{r.latency_ms(90):>9.3f}  {r.latency_ms(99):>9.3f}  {len(r.seconds):>5}  "
            f"{min(r.chunk_size, r.batch):>6}"
        )
    return "\n".join(lines)
