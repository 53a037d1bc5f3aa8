"""``nnspec sweep``: train every trial of a spec's ``sweep:`` block, here or on Dask.

results/
  trials/NNN.yaml   each trial, a complete spec (written before it runs)
  trials/NNN.json   its result: status (ok, diverged, failed), metric, epochs, time, message
  trials/NNN.onnx   its exported model (parity checked), for the trials that trained
  summary.csv       one row per trial: the varied values, the metric, epochs, seconds
  <metric>.png      the metric against each varied value (with the plot extra)
  best.onnx, best.yaml   the best trial's model and spec

A trial's result is written when it ends, atomically: a rerun after an interruption skips the
trials that have one (``resume``), and a failed or diverged trial is recorded, not retried.
Trials run in worker processes (a local process pool, or Dask tasks), each training on one
machine with its own seed; the same sweep gives the same table on either engine.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path

from .. import atomic
from ..errors import DataError, NnspecError
from ..spec.models import Spec
from .trials import (
    Trial,
    better,
    expand_trials,
    rebase_trial_text,
    trial_metric,
    value_text,
)

STATUSES = ("ok", "diverged", "failed")


def run_trial(text: str, file: str, metric: str) -> dict:
    """Train and export one trial spec (given as its YAML text and the path it is saved at,
    which relative data paths are read against); never raises: a failure is a result."""
    from .. import pipeline
    from ..spec.models import parse_spec
    from ..training.loop import TrainingError

    t0 = time.perf_counter()
    out = {"status": "failed", "metric": None, "epochs": 0, "message": "", "model": None}
    try:
        spec = parse_spec(text, file)
        result = pipeline.train(spec, progress=False)
        h = result.history
        out["epochs"] = h.epochs_run
        out["metric"] = trial_metric(h, metric)
        row = h.epochs[h.best_epoch - 1] if h.best_epoch else h.epochs[-1]
        out["validation"] = {k: v for k, v in row.items() if k.startswith("val_")}
        out["test"] = result.metrics
        if out["metric"] is None:
            out["status"] = "diverged"
            out["message"] = f"{metric} is not a finite number"
        else:
            model = pipeline.export(result)  # with the onnxruntime parity check
            out["parity"] = pipeline.read_metadata(model).get("parity")
            out["model"] = model.SerializeToString()
            out["status"] = "ok"
    except TrainingError as e:
        out["status"], out["message"] = "diverged", str(e)
    except NnspecError as e:
        out["message"] = str(e)
    except Exception as e:  # noqa: BLE001 - a trial's crash is its result; the sweep goes on
        out["message"] = f"{type(e).__name__}: {e}"
    out["seconds"] = time.perf_counter() - t0
    out["pid"] = os.getpid()
    return pipeline._json_safe(out) if out["model"] is None else out


# -- the results directory ---------------------------------------------------------------------
def prepare_results(out: Path, trials: list[Trial]) -> dict[int, dict]:
    """Create ``out/trials`` and write each trial's spec; the results already there (of a
    run that was interrupted) by trial number. A directory that holds another sweep's trials
    is refused rather than mixed with this one."""
    atomic.make_directory(out, "the sweep's results (-o)")
    tdir = atomic.make_directory(out / "trials", "the sweep's trials")
    done = {}
    for t in trials:
        spec_file, result_file = tdir / f"{t.stem}.yaml", tdir / f"{t.stem}.json"
        if spec_file.exists() and spec_file.read_text(encoding="utf-8") != t.text:
            raise DataError(
                f"{spec_file}: holds another trial than this sweep's trial {t.number} (the "
                "spec or its sweep: block changed); expected a new results directory, or the "
                "old one removed"
            )
        if result_file.exists():
            try:
                done[t.number] = json.loads(result_file.read_text())
            except ValueError:
                pass  # cannot happen with atomic writes; rerun the trial
        if not spec_file.exists():
            atomic.write_text(spec_file, t.text)
    extra = sorted(
        p.name for p in tdir.glob("*.yaml") if p.stem.isdigit() and int(p.stem) > len(trials)
    )
    if extra:
        raise DataError(
            f"{tdir}: holds trials this sweep does not have ({', '.join(extra[:3])}); expected "
            "a new results directory for a changed sweep"
        )
    return done


def record(out: Path, trial: Trial, result: dict) -> dict:
    """Write a finished trial's model and result (the result last: it marks the trial done)."""
    tdir = out / "trials"
    model = result.pop("model", None)
    if model is not None:
        atomic.write_bytes(tdir / f"{trial.stem}.onnx", model)
    result = {"trial": trial.number, "values": trial.values, **result}
    atomic.write_text(tdir / f"{trial.stem}.json", json.dumps(result, indent=2) + "\n")
    return result


def summary_table(spec: Spec, trials: list[Trial], results: dict[int, dict]) -> str:
    """summary.csv: one row per trial, in trial order; trials not yet run are left out."""
    metric = spec.sweep.metric
    keys = list(spec.sweep.space)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "status", *keys, metric, "epochs", "seconds", "message"])
    for t in trials:
        r = results.get(t.number)
        if r is None:
            continue
        value = "" if r["metric"] is None else repr(float(r["metric"]))
        message = " ".join(str(r.get("message") or "").split())[:300]
        w.writerow(
            [
                t.stem,
                r["status"],
                *(value_text(t.values[k]) for k in keys),
                value,
                r["epochs"],
                f"{r['seconds']:.3f}",
                message,
            ]
        )
    return buf.getvalue()


def best_trial(spec: Spec, results: dict[int, dict]) -> int | None:
    """The number of the best finished trial on the sweep's metric (ties: the first)."""
    best = None
    for n in sorted(results):
        r = results[n]
        if r["status"] != "ok" or r["metric"] is None:
            continue
        if best is None or better(r["metric"], results[best]["metric"], spec.sweep.metric):
            best = n
    return best


# -- engines -----------------------------------------------------------------------------------
def _thread_env(workers: int) -> dict[str, str]:
    """BLAS/OpenMP threads per worker process: the cores shared out among the workers."""
    from .cluster import default_workers

    n = str(max(1, default_workers() // max(1, workers)))
    return {k: n for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


# What a trial imports (run_trial: the pipeline, the trainer, the exporter, onnx and the
# runtime for the parity check), loaded once by the pool's fork server.
POOL_PRELOAD = [
    "nnspec.engines.sweep",
    "nnspec.pipeline",
    "nnspec.training.loop",
    "nnspec.nn.network",
    "nnspec.data.core",
    "nnspec.onnxio.lower",
    "nnspec.onnxio.parity",
    "nnspec_runtime.model",
    "onnx",
    "onnxruntime",
]


def _pool_context():
    """Worker processes that start with a trial's imports done and share no state with this
    one: forked from multiprocessing's fork server (a clean process that imported
    ``POOL_PRELOAD`` once), where the platform has one, else spawned.

    Why: a trial of a small spec trains in 0.05-0.2 s, while a spawned worker spends about
    2 s importing NumPy, pydantic, onnx and onnxruntime before its first trial, which made
    a pool of 2 slower than one process on 8 iris trials. The fork server pays the imports
    once, and forks from it are ready at once. Never this process itself: it may hold
    threads (tqdm's monitor, a BLAS pool) that a fork would copy mid-flight."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(POOL_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def _run_pool(jobs, workers: int, on_result):
    """Trials in a pool of ``workers`` processes (``_pool_context``), with the thread caps
    of ``_thread_env`` in their environment from their first import (the fork server starts
    with this process's environment, set here first; a fork server that an earlier sweep of
    this process started keeps that sweep's caps)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    saved = {k: os.environ.get(k) for k in _thread_env(workers)}
    os.environ.update(_thread_env(workers))
    try:
        ctx = _pool_context()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(run_trial, *args): trial for trial, args in jobs}
            try:
                for f in as_completed(futures):
                    try:
                        result = f.result()
                    except Exception as e:  # noqa: BLE001 - a worker process that died
                        result = _lost(e)
                    on_result(futures[f], result)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_dask(jobs, client, on_result):
    from distributed import as_completed

    futures = {
        client.submit(run_trial, *args, key=f"nnspec-trial-{trial.stem}-{time.time_ns()}"): trial
        for trial, args in jobs
    }
    try:
        for f in as_completed(list(futures)):
            try:
                result = f.result()
            except Exception as e:  # noqa: BLE001 - a task lost with its workers
                result = _lost(e)
            on_result(futures[f], result)
    finally:
        for f in futures:
            f.cancel()


def _lost(error: BaseException) -> dict:
    return {
        "status": "failed",
        "metric": None,
        "epochs": 0,
        "seconds": 0.0,
        "message": f"the worker running the trial was lost: {type(error).__name__}: {error}",
        "model": None,
    }


def run_sweep(
    spec: Spec,
    out: str | Path,
    *,
    engine: str = "local",
    workers: int | None = None,
    client=None,
    progress: bool | None = None,
) -> dict:
    """Run the sweep of ``spec`` into ``out``; returns ``{"trials", "results", "best",
    "ran", "skipped", "seconds"}``. ``engine`` is "local" (a process pool of ``workers``; one
    runs the trials in this process) or "dask" (``client``)."""
    from tqdm import tqdm

    from .cluster import default_workers

    t0 = time.perf_counter()
    out = Path(out)
    trials = expand_trials(spec, out / "trials")
    results = prepare_results(out, trials)
    skipped = len(results)
    todo = [t for t in trials if t.number not in results]
    jobs = [
        (t, (t.text, str((out / "trials" / f"{t.stem}.yaml").resolve()), spec.sweep.metric))
        for t in todo
    ]
    metric = spec.sweep.metric
    bar = tqdm(
        total=len(trials),
        initial=skipped,
        unit="trial",
        desc="sweep",
        disable=(not sys.stderr.isatty()) if progress is None else not progress,
        leave=False,
    )

    def on_result(trial: Trial, result: dict) -> None:
        results[trial.number] = record(out, trial, result)
        atomic.write_text(out / "summary.csv", summary_table(spec, trials, results))
        best = best_trial(spec, results)
        if best is not None:
            bar.set_postfix_str(f"best {metric} {results[best]['metric']:.4g} (trial {best})")
        bar.update()

    with bar:
        if engine == "dask":
            _run_dask(jobs, client, on_result)
        elif (workers or default_workers()) == 1 or len(jobs) <= 1:
            for trial, args in jobs:
                on_result(trial, run_trial(*args))
        else:
            _run_pool(jobs, min(workers or default_workers(), len(jobs)), on_result)
    atomic.write_text(out / "summary.csv", summary_table(spec, trials, results))
    best = best_trial(spec, results)
    if best is not None:
        stem = f"{best:03d}"
        atomic.write_bytes(out / "best.onnx", (out / "trials" / f"{stem}.onnx").read_bytes())
        text = (out / "trials" / f"{stem}.yaml").read_text(encoding="utf-8")
        atomic.write_text(out / "best.yaml", rebase_trial_text(text, out / "trials", out))
    return {
        "trials": trials,
        "results": results,
        "best": best,
        "ran": len(todo),
        "skipped": skipped,
        "seconds": time.perf_counter() - t0,
    }
