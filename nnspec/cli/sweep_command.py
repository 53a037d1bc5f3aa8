"""``nnspec sweep SPEC -o results/ [--engine local|dask] [--workers N] [--scheduler ADDR]``."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    from .device_options import positive_int

    s = sub.add_parser(
        "sweep",
        help="train every trial of the spec's sweep: block, write results/summary.csv, a plot, "
        "and export the best trial's model",
    )
    s.add_argument("spec", help="YAML spec file with a sweep: block")
    s.add_argument("-o", "--output", required=True, metavar="DIR", help="results directory")
    s.add_argument(
        "--engine",
        choices=["local", "dask"],
        default="local",
        help="local: a pool of worker processes on this machine (default); dask: tasks on a "
        'Dask cluster (a local one, or --scheduler); needs pip install "nnspec[dask]"',
    )
    s.add_argument(
        "--workers",
        type=positive_int,
        help="worker processes (default: one per core); 1 runs the trials in this process",
    )
    s.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: a running Dask scheduler (tcp://host:8786)",
    )
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    s.set_defaults(func=sweep_command)


def sweep_command(args) -> int:
    from ..engines.cluster import EngineError, dask_client, describe, require_distributed
    from ..engines.sweep import run_sweep
    from ..spec.models import load_spec

    spec = load_spec(args.spec)
    if spec.sweep is None:
        from ..errors import Issue, SpecError

        raise SpecError(
            [Issue("no sweep: block; expected one with method, metric and space", (), args.spec)]
        )
    if args.scheduler and args.engine != "dask":
        raise EngineError("--scheduler needs --engine dask")
    if args.scheduler and args.workers:
        raise EngineError("--workers starts a local cluster and --scheduler uses one: give one")
    progress = False if args.quiet else None
    out = Path(args.output)
    try:
        if args.engine == "dask":
            require_distributed()
            with dask_client(args.scheduler, args.workers) as client:
                where = describe(client)
                summary = run_sweep(spec, out, engine="dask", client=client, progress=progress)
        else:
            summary = run_sweep(spec, out, workers=args.workers, progress=progress)
            where = "local process pool"
    except KeyboardInterrupt:
        print(
            f"interrupted; the finished trials are kept in {out}: rerun the same command to "
            "go on from them",
            file=sys.stderr,
        )
        return 130
    plot = _plot(spec, summary, out)
    if not args.quiet:
        _print(spec, summary, out, where, plot)
    return 0


def _plot(spec, summary, out: Path) -> str:
    from ..plots.common import PlotError

    path = out / f"{spec.sweep.metric}.png"
    try:
        from ..plots.sweep import plot_sweep

        plot_sweep(spec, summary["trials"], summary["results"], path)
    except PlotError as e:  # matplotlib missing: the sweep's results stand without the plot
        return f"no plot: {e}"
    return f"wrote {path}"


def _print(spec, summary, out: Path, where: str, plot: str) -> None:
    results, metric = summary["results"], spec.sweep.metric
    counts = {
        s: sum(1 for r in results.values() if r["status"] == s)
        for s in ("ok", "diverged", "failed")
    }
    done = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    again = f", {summary['skipped']} from an earlier run" if summary["skipped"] else ""
    print(
        f"{spec.name}: {len(summary['trials'])} trials ({done}{again}) in "
        f"{summary['seconds']:.1f} s on {where}"
    )
    for r in sorted(results.values(), key=lambda r: r["trial"]):
        if r["status"] != "ok":
            print(f"  trial {r['trial']:03d} {r['status']}: {r['message'][:200]}")
    best = summary["best"]
    if best is None:
        print("no trial finished with a metric: nothing exported")
    else:
        r = results[best]
        shown = ", ".join(f"{k} = {v!r}" for k, v in r["values"].items())
        test = ", ".join(f"{k} {v:.4f}" for k, v in (r.get("test") or {}).items() if v is not None)
        print(f"best: trial {best:03d} ({shown}): {metric} {r['metric']:.4f}")
        if test:
            print(f"  its test split (not used to choose): {test}")
        p = r.get("parity") or {}
        if p:
            print(f"  parity (onnxruntime vs NumPy): max abs err {p['max_abs_err']:.2e}")
        print(f"wrote {out / 'summary.csv'}, {out / 'best.onnx'}, {out / 'best.yaml'}")
    print(plot)
