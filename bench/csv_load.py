"""``python -m bench.csv_load [--rows 100000] [--cols 50] [--repeats 5]``.

Loading a numeric CSV: nnspec's ``load_csv`` (the data of ``data: {csv: ...}``) against
``np.loadtxt`` of the same file, in turns, each load in a fresh process so that its peak
memory (the process's peak resident set, VmHWM, less its peak after the imports) is its own
(Linux only).
Prints the time ratio's range and each side's peak as a multiple of the float32 array.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, sys, time
import numpy as np
from pathlib import Path
from nnspec.data import core
def status(key):  # kB lines of /proc/self/status; VmHWM is this process's peak resident set
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
path, how = Path(sys.argv[1]), sys.argv[2]
before = status("VmHWM")
t0 = time.perf_counter()
if how == "nnspec":
    ds = core.load_csv(path, "y", None, "regression")
    shape = (ds.x.shape[0], ds.x.shape[1] + ds.y.shape[1])
else:
    a = np.loadtxt(path, delimiter=",", skiprows=1)
    shape = a.shape
seconds = time.perf_counter() - t0
peak = status("VmHWM") - before
print(json.dumps({"seconds": seconds, "peak": peak, "shape": shape}))
"""


def write_case(path: Path, rows: int, cols: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    data = rng.standard_normal((rows, cols))
    header = ",".join([f"x{i}" for i in range(cols - 1)] + ["y"])
    np.savetxt(path, data, delimiter=",", header=header, comments="", fmt="%.6g")


def load_once(path: Path, how: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), how],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.csv_load", description=__doc__)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--cols", type=int, default=50)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="also write the results as JSON here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.csv"
        write_case(path, args.rows, args.cols)
        runs = {"nnspec": [], "loadtxt": []}
        for _ in range(args.repeats):  # in turns: the machine's noise falls on both
            for how in runs:
                runs[how].append(load_once(path, how))
        size = path.stat().st_size
    f32 = args.rows * args.cols * 4
    ratios = [
        a["seconds"] / b["seconds"] for a, b in zip(runs["nnspec"], runs["loadtxt"], strict=True)
    ]
    result = {
        "rows": args.rows,
        "cols": args.cols,
        "file_bytes": size,
        "float32_bytes": f32,
        "seconds": {k: [r["seconds"] for r in v] for k, v in runs.items()},
        "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
        "peak_over_float32": {k: max(r["peak"] for r in v) / f32 for k, v in runs.items()},
    }
    med = {k: statistics.median(v) for k, v in result["seconds"].items()}
    print(
        f"{args.rows:,} x {args.cols} CSV ({size / 1e6:.1f} MB): nnspec load_csv "
        f"{med['nnspec']:.2f} s, np.loadtxt {med['loadtxt']:.2f} s (medians of {args.repeats})"
    )
    r = result["ratio"]
    print(
        f"time ratio nnspec / np.loadtxt: median {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"
    )
    pk = result["peak_over_float32"]
    print(
        f"peak memory over the float32 array ({f32 / 1e6:.0f} MB): nnspec {pk['nnspec']:.2f}x, "
        f"np.loadtxt {pk['loadtxt']:.2f}x"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
