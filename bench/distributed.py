"""``python -m bench.distributed``: partitioned scoring and sweeps, Dask against one process.

Scoring: ``--rows`` rows (default 2,000,000) of the DBN model (784-500-500-2000-10, compiled
from specs/dbn.yaml with its seed) in ``--files`` Parquet files (default 20), scored into one
output file per input by the single-process engine (``nnspec predict --engine local``:
onnxruntime's intra-op pool on every core) and by ``--engine dask`` on a LocalCluster of one
single-threaded worker process per core (each session capped to cores / workers threads),
one after the other, ``--repeats`` times, each run in a fresh process. Throughput is rows
per second of the scoring itself (from submitting the first partition to the last output
written); the cluster's start-up is reported beside it. Memory: the peak RSS (VmHWM) of
each process that scored.

Sweep: 8 trials of specs/iris.yaml (lr 0.01, 0.03, 0.1, 0.3 × 8 or 16 hidden units; each
trains in 0.05-0.2 s) and 8 of specs/digits.yaml (lr × 32 or 64 hidden units; about 1 s
each), wall time of the whole ``nnspec sweep``, sequential (``--workers 1``: in this
process) against the local process pool (one worker per core) and the Dask engine.

The results replace the "## Beyond one process (Dask)" section of docs/performance.md (or
``-o``); ``python -m bench`` keeps that section when it rewrites the rest of the file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TITLE = "## Beyond one process (Dask)"
# The swept specs: a shipped spec with a sweep: block appended.
SWEEPS = {
    "iris": """sweep:
  method: grid
  metric: val_loss
  space:
    train.optimizer.lr: [0.01, 0.03, 0.1, 0.3]
    layers[0].units: [8, 16]
""",
    "digits": """sweep:
  method: grid
  metric: val_loss
  space:
    train.optimizer.lr: [0.001, 0.002, 0.005, 0.01]
    layers[0].units: [32, 64]
""",
}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- data ----------------------------------------------------------------------------------
def make_data(directory: Path, rows: int, files: int, seed: int = 0) -> list[str]:
    """``files`` Parquet files of digits28 rows (tiled, shuffled, with noise rounded to 0.01,
    so that columns stay as compressible as pixel data), float32, plus an ``id`` column."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnspec.data.core import load_builtin

    d = load_builtin("digits28", None, "classification")
    names = d.info.feature_names
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    per = -(-rows // files)
    paths = []
    for i in range(files):
        n = min(per, rows - i * per)
        x = d.x[rng.integers(0, len(d.x), n)].astype(np.float32)
        x += np.round(rng.normal(0, 0.3, x.shape), 2).astype(np.float32)
        cols = {"id": pa.array(np.arange(i * per, i * per + n))}
        cols.update({name: pa.array(x[:, j]) for j, name in enumerate(names)})
        path = directory / f"part-{i:03d}.parquet"
        pq.write_table(pa.table(cols), path, row_group_size=65536)
        paths.append(str(path))
    return paths


# -- one measurement, in a fresh process ---------------------------------------------------
def measure_scoring(engine: str, data: str, model: str, out: str, workers: int) -> dict:
    from nnspec.engines import scoring
    from nnspec.engines.cluster import dask_client

    inputs = scoring.expand_inputs(data)
    parts = scoring.plan_partitions(inputs, Path(out))
    Path(out).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if engine == "dask":
        with dask_client(None, workers) as client:
            started = time.perf_counter() - t0
            summary = scoring.score_partitions(
                parts, Path(model), ["id"], engine="dask", client=client, progress=False
            )
    else:
        started = 0.0
        summary = scoring.score_partitions(parts, Path(model), ["id"], progress=False)
    wall = time.perf_counter() - t0
    peaks = {}
    for r in summary["results"]:
        peaks[r["pid"]] = max(peaks.get(r["pid"], 0), r["peak_rss_bytes"] or 0)
    return {
        "engine": engine,
        "rows": summary["rows"],
        "partitions": len(parts),
        "scoring_s": summary["seconds"],
        "startup_s": started,
        "wall_s": wall,
        "rows_per_s": summary["rows"] / summary["seconds"],
        "peak_rss_per_process": sorted(peaks.values()),
    }


def measure_sweep(engine: str, spec: str, out: str, workers: int) -> dict:
    from nnspec.engines.cluster import dask_client
    from nnspec.engines.sweep import run_sweep
    from nnspec.spec.models import load_spec

    s = load_spec(spec)
    t0 = time.perf_counter()
    if engine == "dask":
        with dask_client(None, workers) as client:
            started = time.perf_counter() - t0
            summary = run_sweep(s, out, engine="dask", client=client, progress=False)
    else:
        started = 0.0
        summary = run_sweep(s, out, workers=workers, progress=False)
    statuses = [r["status"] for r in summary["results"].values()]
    return {
        "engine": engine,
        "workers": workers,
        "wall_s": time.perf_counter() - t0,
        "startup_s": started,
        "trials": len(summary["trials"]),
        "ok": statuses.count("ok"),
        "trial_s": sum(r["seconds"] for r in summary["results"].values()),
    }


def in_fresh_process(kind: str, **kwargs) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "bench.distributed", "--measure", kind, json.dumps(kwargs)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"{kind} {kwargs} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


# -- the runs ------------------------------------------------------------------------------
def run(args) -> dict:
    from nnspec.engines.cluster import default_workers

    cores = default_workers()
    work = Path(tempfile.mkdtemp(prefix="nnspec-bench-dask-"))
    results = {"cores": cores, "rows": args.rows, "files": args.files, "scoring": [], "sweep": []}
    results["argv"] = args.argv
    try:
        if "scoring" in args.only:
            model = work / "dbn.onnx"
            subprocess.run(
                [sys.executable, "-m", "nnspec", "compile", "specs/dbn.yaml", "-o", str(model)],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            t0 = time.perf_counter()
            make_data(work / "data", args.rows, args.files)
            size = sum(p.stat().st_size for p in (work / "data").iterdir())
            results["data_bytes"] = size
            log(
                f"data: {args.rows:,} rows in {args.files} files, {size / 2**20:.0f} MiB, "
                f"{time.perf_counter() - t0:.0f} s"
            )
            for i in range(args.repeats):
                for engine in ("local", "dask"):
                    out = work / f"out-{engine}"
                    shutil.rmtree(out, ignore_errors=True)
                    r = in_fresh_process(
                        "scoring",
                        engine=engine,
                        data=str(work / "data"),
                        model=str(model),
                        out=str(out),
                        workers=cores,
                    )
                    r["repeat"] = i
                    results["scoring"].append(r)
                    save(args, results)
                    log(
                        f"  scoring {engine:<5} {r['rows_per_s']:>10,.0f} rows/s "
                        f"({r['scoring_s']:.1f} s, start-up {r['startup_s']:.1f} s)"
                    )
        if "sweep" in args.only:
            for name, block in SWEEPS.items():
                spec = work / f"{name}-sweep.yaml"
                spec.write_text((ROOT / "specs" / f"{name}.yaml").read_text() + block)
                for i in range(args.repeats):
                    for engine, workers in (("local", 1), ("local", cores), ("dask", cores)):
                        out = work / f"sweep-{name}-{engine}-{workers}"
                        shutil.rmtree(out, ignore_errors=True)
                        r = in_fresh_process(
                            "sweep", engine=engine, spec=str(spec), out=str(out), workers=workers
                        )
                        r["repeat"], r["spec"] = i, name
                        results["sweep"].append(r)
                        save(args, results)
                        log(f"  sweep {name} {engine} x{workers}: {r['wall_s']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def save(args, results: dict) -> None:
    """The raw results so far (a run stopped midway keeps what it measured)."""
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


# -- the report ----------------------------------------------------------------------------
def _range(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    med = statistics.median(values)
    return f"{format(med, fmt)} ({format(lo, fmt)}–{format(hi, fmt)})"


def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def render(results: dict, command: str) -> str:
    import platform

    from bench.__main__ import cpu_model

    lines = [
        TITLE,
        "",
        f"`{command}` (generated by `bench/distributed.py`; the rest of this file by "
        "`python -m bench`, which keeps this section). Machine: "
        f"{cpu_model()}, {results['cores']} cores, shared with other work (runs vary by "
        "about ±30%: each row gives the median and the range over the repeats, each run in "
        f"a fresh process). Python {platform.python_version()}.",
        "",
    ]
    sc = results["scoring"]
    if sc:
        local = [r for r in sc if r["engine"] == "local"]
        dask = [r for r in sc if r["engine"] == "dask"]
        ratios = [d["rows_per_s"] / lo["rows_per_s"] for lo, d in zip(local, dask, strict=True)]
        ok = min(ratios) >= 0.9
        walls = [d["wall_s"] / lo["wall_s"] for lo, d in zip(local, dask, strict=True)]
        lines += [
            f"### Scoring {results['rows']:,} DBN rows from {results['files']} Parquet files",
            "",
            "784-500-500-2000-10 (specs/dbn.yaml, compiled), float32 digits28-like rows "
            f"({results.get('data_bytes', 0) / 2**20:,.0f} MiB of Parquet), one output file "
            "per input with an `id` column kept. Local: `nnspec predict --engine local`, one "
            "process, onnxruntime's pool on every core. Dask: a LocalCluster of "
            f"{results['cores']} single-threaded worker processes, each session capped to "
            f"{max(1, results['cores'] // results['cores'])} intra-op thread(s) "
            "(workers × threads = cores). Rows/s count the scoring (first partition sent to "
            "last output written); the cluster's start-up is beside it.",
            "",
            "| engine | rows/s | scoring s | cluster start-up s | peak RSS per process |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, rows in (("single process", local), ("dask local cluster", dask)):
            rss = [max(r["peak_rss_per_process"]) for r in rows]
            lines.append(
                f"| {name} | {_range([r['rows_per_s'] for r in rows], ',.0f')} | "
                f"{_range([r['scoring_s'] for r in rows], '.1f')} | "
                f"{_range([r['startup_s'] for r in rows], '.1f')} | "
                f"{_mib(statistics.median(rss))} (max {_mib(max(rss))}) |"
            )
        lines += [
            "",
            f"Dask / single process throughput, paired by repeat: {_range(ratios, '.2f')}× "
            f"against the target ≥ 0.9×: **{'PASS' if ok else 'MISS'}** "
            f"({', '.join(f'{r:.2f}' for r in ratios)}). Including the cluster's start-up, "
            f"Dask's wall time is {_range(walls, '.2f')}"
            "× the single process's. Memory per worker is bounded by a record batch "
            "(about 16 MiB of float32 features: 5,349 rows of 784 columns), not by the file "
            "or the data.",
            "",
        ]
    by_spec: dict[str, list] = {}
    for r in results["sweep"]:
        by_spec.setdefault(r.get("spec", "iris"), []).append(r)
    for name, sw in by_spec.items():
        groups = {}
        for r in sw:
            groups.setdefault((r["engine"], r["workers"]), []).append(r)
        seq = groups.get(("local", 1), [])
        per_trial = statistics.median(r["trial_s"] / r["trials"] for r in seq) if seq else 0
        lines += [
            f"### Sweep: {sw[0]['trials']} {name} trials (specs/{name}.yaml, lr × hidden units)",
            "",
            "Wall time of the whole `nnspec sweep` (expansion and checks, training, export with "
            "the parity check, summary.csv; no plot), in a fresh process. Sequential: "
            "`--workers 1`, the trials in the command's own process; a trial takes "
            f"{per_trial:.2f} s there (median).",
            "",
            "| engine | wall s | vs sequential | of which cluster start-up s | trials ok |",
            "| --- | --- | --- | --- | --- |",
        ]
        for (engine, workers), rows in groups.items():
            label = "sequential" if workers == 1 else f"{engine} pool of {workers}"
            if engine == "dask":
                label = f"dask local cluster of {workers}"
            speed = [s["wall_s"] / r["wall_s"] for s, r in zip(seq, rows, strict=False)]
            lines.append(
                f"| {label} | {_range([r['wall_s'] for r in rows], '.2f')} | "
                f"{_range(speed, '.2f')}× | {_range([r['startup_s'] for r in rows], '.2f')} | "
                f"{rows[0]['ok']}/{rows[0]['trials']} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def replace_section(doc: Path, section: str) -> None:
    """Put ``section`` in place of the doc's own (up to the next '## '), or at its end."""
    text = doc.read_text() if doc.exists() else ""
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == TITLE), None)
    if start is None:
        doc.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    doc.write_text("".join(lines[:start]) + section + ("\n" + tail if tail else ""))


def read_section(doc: Path) -> str | None:
    lines = doc.read_text().splitlines(keepends=True) if doc.exists() else []
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == TITLE), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "".join(lines[start:end])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--measure"]:
        kwargs = json.loads(argv[2])
        fn = measure_scoring if argv[1] == "scoring" else measure_sweep
        print(json.dumps(fn(**kwargs)))
        return 0
    p = argparse.ArgumentParser(
        prog="python -m bench.distributed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", default="scoring,sweep", help="scoring, sweep or both")
    p.add_argument("-o", "--output", default="docs/performance.md")
    p.add_argument("--json", help="also write the raw results here (after each run)")
    p.add_argument("--from-json", help="render the section from results saved by --json")
    args = p.parse_args(argv)
    args.argv = argv
    args.only = {s.strip() for s in args.only.split(",")}
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        argv = results.get("argv", argv)
    else:
        results = run(args)
        results["argv"] = argv
    command = "python -m bench.distributed " + " ".join(argv)
    section = render(results, command.strip())
    print(section)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    replace_section(Path(args.output), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
