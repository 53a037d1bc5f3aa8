"""int8 against float32, side by side in one run: file size, CPU latency and accuracy of the
DBN and LeNet specs, trained, then quantized by ``nnspec quantize --int8`` (onnxruntime's
dynamic quantization).

    python -m bench.quantized [--doc docs/performance.md] [--repeats 30]

Latency is timed in turns (float32, int8, float32, ...) through ``nnspec_runtime.Model.run``
on the CPU provider, at batch 1 and 256, so that both models see the same machine load; the
median and the spread (p10-p90) of each are reported, and the ratio of the medians. The
section ``## Quantized models (int8 vs float32, CPU)`` of the doc is replaced (``python -m
bench`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Quantized models (int8 vs float32, CPU)"
SPECS = ("dbn", "lenet")
BATCHES = (1, 256)


def _time_in_turns(models: dict, x: np.ndarray, repeats: int) -> dict[str, list[float]]:
    for m in models.values():  # warm-up: allocations and first-run costs
        for _ in range(3):
            m.run(x)
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(repeats):
        for name, m in models.items():
            t0 = time.perf_counter()
            m.run(x)
            times[name].append(time.perf_counter() - t0)
    return times


def measure(repeats: int) -> list[dict]:
    import nnspec
    from nnspec.onnxio.quantize import quantize_model
    from nnspec_runtime import Model

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-quantized-") as tmp:
        for name in SPECS:
            spec = nnspec.load_spec(ROOT / "specs" / f"{name}.yaml")
            t0 = time.perf_counter()
            result = nnspec.train(spec)
            f32 = Path(tmp) / f"{name}.onnx"
            nnspec.export(result, f32)
            trained_s = time.perf_counter() - t0
            i8 = Path(tmp) / f"{name}-int8.onnx"
            record = quantize_model(f32, i8, mode="int8", max_drop=1.0)
            models = {"float32": Model(f32, device="cpu"), "int8": Model(i8, device="cpu")}
            x_all = result.held_out[1].x
            for batch in BATCHES:
                x = np.resize(x_all, (batch, *x_all.shape[1:])).astype(np.float32)
                times = _time_in_turns(models, x, repeats)
                rows.append(
                    {
                        "model": name,
                        "batch": batch,
                        "bytes": {"float32": f32.stat().st_size, "int8": i8.stat().st_size},
                        "ms": {
                            k: [1e3 * float(np.percentile(v, p)) for p in (10, 50, 90)]
                            for k, v in times.items()
                        },
                        "accuracy": record["delta"]["accuracy"],
                        "max_abs_diff": record["delta"]["max_abs_diff"],
                        "rows": record["rows"],
                        "train_s": trained_s,
                    }
                )
                print(f"{name} batch {batch}: {rows[-1]['ms']}", flush=True)
    return rows


def section(rows: list[dict], repeats: int) -> str:
    import onnxruntime

    import nnspec

    cpu = platform.processor() or platform.machine()
    lines = [
        HEADING,
        "",
        f"`python -m bench.quantized` ({time.strftime('%Y-%m-%d')}, {cpu}, "
        f"{os.cpu_count()} cores, onnxruntime {onnxruntime.__version__}, nnspec "
        f"{nnspec.__version__}): each spec trained with its seed, exported, then "
        "`nnspec quantize --int8` (dynamic: MatMul/Gemm weights in 7 bits per channel, Conv "
        "left in float32); both models timed in turns in the same run, "
        f"{repeats} calls each after 3 warm-up, `Model.run` on the CPU provider. Latency: "
        "median (p10-p90) ms; ratio = float32 median / int8 median (> 1: int8 faster). "
        "Accuracy on each model's test split.",
        "",
        "| model | batch | float32 size | int8 size | size ratio | float32 ms | int8 ms "
        "| speed-up | accuracy float32 -> int8 | max prob. diff |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        f, q = r["ms"]["float32"], r["ms"]["int8"]
        b = r["bytes"]
        a = r["accuracy"]
        lines.append(
            f"| {r['model']} | {r['batch']} | {b['float32'] / 2**20:.2f} MiB | "
            f"{b['int8'] / 2**20:.2f} MiB | {b['float32'] / b['int8']:.2f}x | "
            f"{f[1]:.3f} ({f[0]:.3f}-{f[2]:.3f}) | {q[1]:.3f} ({q[0]:.3f}-{q[2]:.3f}) | "
            f"{f[1] / q[1]:.2f}x | {a['float32']:.4f} -> {a['quantized']:.4f} "
            f"({a['delta']:+.4f}, {r['rows']} rows) | {r['max_abs_diff']:.2g} |"
        )
    lines += [
        "",
        "One run on a shared, noisy machine (rows vary by about ±30% between runs); the sizes "
        "and accuracies are exact for the seed.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.quantized", description=__doc__)
    p.add_argument("--doc", default=str(ROOT / "docs" / "performance.md"))
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args(argv)
    from .gpu_proof import replace_section

    rows = measure(args.repeats)
    text = section(rows, args.repeats)
    print(text)
    replace_section(Path(args.doc), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
