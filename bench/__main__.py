"""``python -m bench [--quick] [--only NAMES] [-o docs/performance.md] [--json PATH]``.

Runs nnspec's trainer and its peers (PyTorch CPU, scikit-learn), one process per peer, and
writes the results with their ratios and the targets of the performance issue to Markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .cases import INFER_BATCHES, INFER_MODELS, MEMORY_CASE, MODELS, train_cases

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("train", "gemm", "infer", "memory", "cli")
PEERS = ("nnspec", "torch", "sklearn")
PEER_MODULE = {"torch": "torch", "sklearn": "sklearn"}


# -- selection -----------------------------------------------------------------------------
class Selection:
    """``--only``: comma-separated section, peer and model names; a group none of whose
    names is given keeps all of its members ("dbn" means both dbn variants)."""

    def __init__(self, only: str | None):
        tokens = {t.strip() for t in (only or "").split(",") if t.strip()}
        models = set(MODELS)
        known = set(SECTIONS) | set(PEERS) | models | {"dbn"}
        unknown = tokens - known
        if unknown:
            raise SystemExit(
                f"--only: unknown name(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        if "dbn" in tokens:
            tokens |= {"dbn-logistic", "dbn-relu"}
        self.sections = [s for s in SECTIONS if s in tokens] or list(SECTIONS)
        self.peers = [p for p in PEERS if p in tokens] or list(PEERS)
        self.models = [m for m in MODELS if m in tokens] or list(MODELS)


# -- running workers -----------------------------------------------------------------------
def run_worker(task: dict, workdir: Path, timeout: float) -> dict:
    path = workdir / f"task-{task['peer']}-{task['kind']}.json"
    path.write_text(json.dumps(task))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.worker", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    took = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return {"error": f"worker exited {proc.returncode}: {tail}"}
    out = json.loads(lines[-1])
    print(f"  {task['peer']:<7} {task['kind']:<6} {took:6.1f} s", file=sys.stderr, flush=True)
    return out


def prepare_data(models: list[str], workdir: Path) -> dict[str, str]:
    """Each model's data: nnspec's built-in set, standardized once (float32), tiny sets
    repeated to ``min_samples`` rows so that an epoch is long enough to time."""
    import numpy as np

    from nnspec.data.core import load_builtin

    paths = {}
    for name in models:
        m = MODELS[name]
        d = load_builtin(m.builtin, None, m.task)
        x = d.x.astype(np.float64)
        if m.image:  # one mean and deviation per channel (one channel), as nnspec does
            x = (x - x.mean()) / x.std()
        else:
            x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        y = d.y
        if m.task == "regression":
            y = y.reshape(len(y), -1).astype(np.float64)
            y = ((y - y.mean(axis=0)) / y.std(axis=0)).astype(np.float32)
        reps = -(-m.min_samples // len(x))
        x = np.ascontiguousarray(
            np.tile(x.astype(np.float32), (reps, 1))[: max(m.min_samples, len(x))]
        )
        y = np.concatenate([y] * reps)[: len(x)]
        path = workdir / f"{name}.npz"
        np.savez(path, x=x, y=y)
        paths[name] = str(path)
    return paths


def cli_latency(runs: int, workdir: Path) -> dict:
    """Wall time of cold ``nnspec validate specs/dbn.yaml`` and ``nnspec compile`` processes
    (one unmeasured run first, for the disk cache and Python's bytecode cache).

    PYTHONDONTWRITEBYTECODE is removed from the processes' environment: set (as on some CI
    and sandbox machines), every run of an editable install compiles nnspec's ~30 modules from
    source (80 ms here), which no installed copy does: pip writes the bytecode at install."""
    exe = Path(sys.executable).with_name("nnspec")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "nnspec"]
    out = {"command": " ".join(cmd)}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    jobs = {
        "validate": [*cmd, "validate", "specs/dbn.yaml"],
        "compile": [*cmd, "compile", "specs/dbn.yaml", "-o", str(workdir / "dbn.onnx")],
    }
    for name, argv in jobs.items():
        times = []
        for i in range(runs + 1):
            t0 = time.perf_counter()
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env)
            took = time.perf_counter() - t0
            if proc.returncode != 0:
                out[name] = {"error": proc.stderr[-1000:]}
                break
            if i:
                times.append(took)
        else:
            out[name] = {"median_s": statistics.median(times), "seconds": times}
    return out


# -- machine -------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(results: dict) -> dict:
    versions = {"python": platform.python_version()}
    for w in results.get("workers", {}).values():
        versions.update(w.get("versions", {}))
    for mod in ("numpy", "onnxruntime", "onnx", "torch", "sklearn", "threadpoolctl"):
        if mod not in versions and importlib.util.find_spec(mod) is not None:
            try:
                versions[mod] = __import__(mod).__version__
            except Exception:  # noqa: BLE001 - a version is only informative
                pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "versions": versions,
    }


# -- the run -------------------------------------------------------------------------------
def run(args) -> dict:
    sel = Selection(args.only)
    quick = args.quick
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    base = {
        "warmup": 1,
        "repeats": 3 if quick else 5,
        # Training epochs of the small models last milliseconds: the median of 11 rides out
        # the bursts of a shared machine better than the median of 5.
        "train_repeats": 3 if quick else 11,
        "threads": threads,
        "min_time": 0.05 if quick else 0.2,
        "batches": list(INFER_BATCHES),
        "gemm_n": 2048 if quick else 4096,
    }
    available = {
        p: importlib.util.find_spec(PEER_MODULE.get(p, "nnspec")) is not None for p in PEERS
    }
    peers = [p for p in sel.peers if available[p]]
    results: dict = {
        "command": "python -m bench " + " ".join(shlex.quote(a) for a in args.argv),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": quick,
        "settings": base,
        "skipped_peers": [p for p in sel.peers if not available[p]],
        "workers": {},
        "train": {},
        "infer": {},
        "memory": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="nnspec-bench-"))
    try:
        need = set()
        if "train" in sel.sections:
            need |= set(sel.models)
        if "infer" in sel.sections:
            need |= {m for m in INFER_MODELS if m in sel.models}
        if "memory" in sel.sections:
            need.add(MEMORY_CASE["model"])
        data = prepare_data(sorted(need), workdir)
        base["data"] = data
        print(f"bench: {', '.join(sel.sections)} for {', '.join(peers)}", file=sys.stderr)

        if "gemm" in sel.sections:
            w = run_worker({**base, "peer": "numpy", "kind": "gemm"}, workdir, args.timeout)
            results["workers"]["numpy/gemm"] = w
            results["gemm"] = w.get("gemm")
        if "train" in sel.sections:
            # Model by model, the peers one after the other: a shared machine's speed drifts
            # over minutes, and peers measured a minute apart compare better than peers
            # measured three minutes apart (as a whole section per peer did).
            for model in sel.models:
                for peer in peers:
                    if peer == "sklearn" and not MODELS[model].mlp:
                        continue
                    task = {**base, "peer": peer, "kind": "train", "cases": train_cases([model])}
                    task["repeats"] = base["train_repeats"]
                    w = run_worker(task, workdir, args.timeout)
                    results["workers"][f"{peer}/train/{model}"] = w
                    for key, r in w.get("cases", {}).items():
                        results["train"].setdefault(key, {})[peer] = r
        if "infer" in sel.sections:
            cases = [{"model": m} for m in INFER_MODELS if m in sel.models]
            for peer in [p for p in peers if p in ("nnspec", "torch")]:
                if not cases:
                    break
                task = {**base, "peer": peer, "kind": "infer", "cases": cases}
                w = run_worker(task, workdir, args.timeout)
                results["workers"][f"{peer}/infer"] = w
                for key, r in w.get("cases", {}).items():
                    model = key.split("/")[0]
                    slot = results["infer"].setdefault(model, {})
                    for b, row in r["batches"].items():
                        slot.setdefault(b, {}).update(row)
                    if "spec_to_onnx_s" in r:
                        results.setdefault("spec_to_onnx_inproc", {})[model] = r["spec_to_onnx_s"]
        if "memory" in sel.sections:
            for peer in [p for p in peers if p in ("nnspec", "torch")]:
                task = {**base, "peer": peer, "kind": "memory", "cases": [MEMORY_CASE]}
                task["warmup"], task["repeats"] = 0, 1
                w = run_worker(task, workdir, args.timeout)
                results["workers"][f"{peer}/memory"] = w
                if "memory" in w:
                    results["memory"][peer] = w["memory"]
        if "cli" in sel.sections and "nnspec" in peers:
            results["cli"] = cli_latency(3 if quick else 5, workdir)
            print("  nnspec  cli    done", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["machine"] = machine(results)
    results["errors"] = {k: w["error"] for k, w in results["workers"].items() if "error" in w}
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and shorter timings")
    p.add_argument(
        "--only",
        help="comma-separated names to run: sections (train, gemm, infer, memory, cli), "
        "peers (nnspec, torch, sklearn) and/or models (mcycle, iris, digits, dbn, "
        "dbn-logistic, dbn-relu, lenet); unnamed groups run in full",
    )
    p.add_argument("-o", "--output", default="docs/performance.md", help="Markdown report path")
    p.add_argument("--json", help="also write the raw results as JSON to this path")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per worker")
    args = p.parse_args(argv)
    args.argv = argv
    from .report import render

    t0 = time.perf_counter()
    results = run(args)
    results["wall_s"] = time.perf_counter() - t0
    text = render(results)
    print(text)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    from .distributed import read_section as read_dask_section
    from .distributed import replace_section as replace_dask_section
    from .gpu_proof import read_section, replace_section
    from .quantized import HEADING as QUANTIZED

    gpu = read_section(out)
    quantized = read_section(out, QUANTIZED)
    dask = read_dask_section(out)  # by python -m bench.distributed: kept as it is
    out.write_text(text)
    if gpu:  # measured on a lent GPU machine by bench/gpu_proof.py: not this run's to drop
        replace_section(out, gpu)
    if quantized:  # written by python -m bench.quantized: kept, as the GPU section is
        replace_section(out, quantized)
    if dask:
        replace_dask_section(out, dask)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    for k, e in results["errors"].items():
        print(f"bench: {k} failed: {e}", file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
