"""Results -> Markdown: the machine, the targets with PASS/MISS, and every measurement."""

from __future__ import annotations

from .cases import BATCH_SIZES, INFER_BATCHES, MODELS, OPTIMIZERS, case_key

TRAIN_FLOPS_PER_PARAM = 6  # forward 2, backward 4 multiply-adds per weight per sample


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}{unit}"
    if v >= 10:
        return f"{v:.1f}{unit}"
    return f"{v:.2f}{unit}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _rx(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}×"


def _sps(results: dict, key: str, peer: str) -> float | None:
    return results["train"].get(key, {}).get(peer, {}).get("samples_per_s")


def gemm_fraction(results: dict, key: str, peer: str) -> float | None:
    peak = (results.get("gemm") or {}).get("gflops")
    r = results["train"].get(key, {}).get(peer)
    if not peak or not r:
        return None
    params = r.get("params") or MODELS[key.split("/")[0]].param_count()
    return TRAIN_FLOPS_PER_PARAM * params * r["samples_per_s"] / (peak * 1e9)


def _keys(models: list[str]) -> list[str]:
    return [
        case_key({"model": m, "opt": o, "batch": b})
        for m in models
        for o in OPTIMIZERS
        for b in BATCH_SIZES
    ]


def _check(rows: list[tuple[str, float | None]], ok) -> tuple[str, str]:
    """(measured text, PASS/MISS/n/a) over (label, ratio) rows: the worst case is shown."""
    have = [(k, r) for k, r in rows if r is not None]
    if not have:
        return "not measured", "n/a"
    worst = min(have, key=lambda kr: kr[1])
    verdict = "PASS" if all(ok(r) for _, r in have) else "MISS"
    missing = len(rows) - len(have)
    note = f" ({missing} not measured)" if missing else ""
    fails = sum(not ok(r) for _, r in have)
    lead = f"{fails}/{len(have)} miss; " if fails else ""
    return f"{lead}worst {_rx(worst[1])} ({worst[0]}){note}", verdict


def targets(results: dict) -> list[tuple[str, str, str, str]]:
    out = []
    dbn = _keys(["dbn-logistic", "dbn-relu"])
    text, v = _check(
        [(k, _ratio(_sps(results, k, "nnspec"), _sps(results, k, "torch"))) for k in dbn],
        lambda r: r >= 1.0,
    )
    sgd = [k for k in dbn if "/sgd/b256" in k]
    fr = [(k, gemm_fraction(results, k, "nnspec")) for k in sgd]
    t2, v2 = _check(fr, lambda r: r >= 0.70)
    t2 = t2.replace("×", "").replace("worst ", "worst GEMM fraction ")
    out.append(
        (
            "dbn training, SGD and Adam, batch 64 and 256",
            "≥ 1.0× PyTorch CPU; SGD batch 256 ≥ 70% of GEMM peak",
            f"vs PyTorch: {text}; {t2}",
            "PASS" if v == v2 == "PASS" else ("n/a" if "n/a" in (v, v2) else "MISS"),
        )
    )
    small = _keys(["mcycle", "iris"])
    text, v = _check(
        [(k, _ratio(_sps(results, k, "nnspec"), _sps(results, k, "torch"))) for k in small],
        lambda r: r >= 5.0,
    )
    out.append(("mcycle and iris training", "≥ 5× PyTorch CPU", text, v))
    text, v = _check(
        [
            (k, _ratio(_sps(results, k, "nnspec"), _sps(results, k, "torch")))
            for k in _keys(["lenet"])
        ],
        lambda r: r >= 1.0,
    )
    out.append(("lenet training, batch 64 and 256", "≥ 1.0× PyTorch CPU", text, v))
    mlps = _keys([m for m in MODELS if MODELS[m].mlp])
    text, v = _check(
        [(k, _ratio(_sps(results, k, "nnspec"), _sps(results, k, "sklearn"))) for k in mlps],
        lambda r: r >= 2.0,
    )
    out.append(("every MLP vs scikit-learn", "≥ 2×", text, v))
    rows = []
    for model, by_batch in results.get("infer", {}).items():
        for b, row in by_batch.items():
            a = row.get("nnspec_onnx", {}).get("samples_per_s")
            t = row.get("torch_onnx", {}).get("samples_per_s")
            rows.append((f"{model} batch {b}", _ratio(a, t)))
    text, v = _check(rows, lambda r: r >= 0.95)
    out.append(
        (
            "inference, nnspec ONNX vs torch-exported ONNX, both in onnxruntime",
            "≥ 0.95×",
            text,
            v,
        )
    )
    mem = results.get("memory", {})
    a = mem.get("nnspec", {}).get("peak_MiB")
    t = mem.get("torch", {}).get("peak_MiB")
    r = _ratio(a, t)
    out.append(
        (
            "peak RSS training dbn",
            "≤ 1.5× PyTorch",
            "not measured" if r is None else f"{_fmt(a)} MiB vs {_fmt(t)} MiB = {r:.2f}×",
            "n/a" if r is None else ("PASS" if r <= 1.5 else "MISS"),
        )
    )
    val = (results.get("cli") or {}).get("validate", {}).get("median_s")
    out.append(
        (
            "`nnspec validate` cold start",
            "< 0.5 s",
            "not measured" if val is None else f"{val:.3f} s",
            "n/a" if val is None else ("PASS" if val < 0.5 else "MISS"),
        )
    )
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render(results: dict) -> str:
    m = results["machine"]
    s = results["settings"]
    L = ["# Performance", ""]
    L.append(
        "Generated by `bench/` (run on demand, never part of CI's pass/fail); rerun with the "
        "command below and commit the regenerated file."
    )
    L += ["", f"- command: `{results['command']}`", f"- date: {results['date']}"]
    L.append(f"- wall time of the suite: {results.get('wall_s', 0):.0f} s")
    L.append(f"- machine: {m['cpu']}, {m['cores']} cores ({m['affinity']} usable), {m['platform']}")
    L.append("- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    pools = (results.get("gemm") or {}).get("threadpools")
    if pools:
        L.append(
            "- BLAS / OpenMP (threadpoolctl, NumPy's process): "
            + "; ".join(
                f"{p['internal_api']} {p['version']} ({p['user_api']}, "
                f"{p['num_threads']} threads, {p.get('architecture')})"
                for p in pools
            )
        )
    L.append(
        "- method: one process per peer and model, the peers one after the other for each "
        f"model; {s['warmup']} warm-up epoch then the median of "
        f"{s.get('train_repeats', s['repeats'])} timed epochs per case; float32 everywhere; "
        f"threads = {s['threads']} "
        "(`torch.set_num_threads`, BLAS default); inference: median of "
        f"{s['repeats']} runs of repeated calls lasting ≥ {s['min_time']} s each"
        + (" (**--quick**: fewer repeats, shorter timings)" if results["quick"] else "")
    )
    if results.get("skipped_peers"):
        L.append(
            f"- skipped (not importable; `pip install -r bench/requirements.txt`): "
            f"{', '.join(results['skipped_peers'])}"
        )
    for k, e in results.get("errors", {}).items():
        L.append(f"- **error** in {k}: `{e.strip().splitlines()[-1] if e.strip() else e}`")

    L += ["", "## Targets", ""]
    L.append(
        "Ratios are nnspec / peer: **> 1 means nnspec is faster** (for peak RSS and latency, "
        "lower is better). A row passes when every measured case in it meets the target; the "
        "worst case is shown."
    )
    L.append("")
    L += _table(["work", "target", "measured", "result"], [list(r) for r in targets(results)])
    L += [
        "",
        "What was changed to get here, and, for each target missed, the profile of what stands "
        "in the way and what was tried: [performance-notes.md](performance-notes.md) (written "
        "by hand; this file is generated).",
    ]

    if results["train"]:
        L += ["", "## Training throughput (samples/s, one epoch, float32)", ""]
        L.append(
            "nnspec: one `nnspec.training.loop.fit` run of warm-up + repeats epochs, each epoch "
            "timed by the trainer's own history (shuffle, batches, running metrics). PyTorch: a "
            "plain loop (one optimizer for all epochs; randperm, index, "
            "forward, cross-entropy/MSE, backward, step, `loss.item()`). scikit-learn: "
            "`MLPClassifier`/`MLPRegressor` with `max_iter=1`, `warm_start=True` (one epoch per "
            "`fit`). Same architecture, He/Glorot-uniform init, SGD (lr 0.01, momentum 0.9) or "
            "Adam (lr 0.001). Ratios > 1: nnspec faster. GEMM %: 6 × parameters FLOPs per "
            "sample over the measured NumPy float32 GEMM peak."
        )
        L.append("")
        rows = []
        for key in results["train"]:
            model = key.split("/")[0]
            a, t, k = (_sps(results, key, p) for p in ("nnspec", "torch", "sklearn"))
            g_n = gemm_fraction(results, key, "nnspec") if model.startswith("dbn") else None
            g_t = gemm_fraction(results, key, "torch") if model.startswith("dbn") else None
            rows.append(
                [
                    key,
                    _fmt(a),
                    _fmt(t),
                    _fmt(k),
                    _rx(_ratio(a, t)),
                    _rx(_ratio(a, k)),
                    "" if g_n is None else f"{g_n:.0%}",
                    "" if g_t is None else f"{g_t:.0%}",
                ]
            )
        L += _table(
            [
                "model/optimizer/batch",
                "nnspec",
                "PyTorch",
                "scikit-learn",
                "nnspec / PyTorch",
                "nnspec / sklearn",
                "nnspec GEMM %",
                "PyTorch GEMM %",
            ],
            rows,
        )
        n = {
            MODELS[k.split("/")[0]].name: r for k, v in results["train"].items() for r in v.values()
        }
        L.append("")
        L.append(
            "Samples per epoch: "
            + ", ".join(f"{name} {r['samples']:,}" for name, r in n.items() if "samples" in r)
            + " (tiny sets repeated)."
        )
    g = results.get("gemm")
    if g:
        L += ["", "## Float32 GEMM peak", ""]
        L.append(
            f"NumPy `matmul` of two {g['n']}×{g['n']} float32 matrices: best "
            f"{g['gflops']:.0f} GFLOP/s (median {g['median_gflops']:.0f} GFLOP/s)."
        )
    if results.get("infer"):
        L += ["", "## Inference throughput (samples/s)", ""]
        L.append(
            "nnspec ONNX: `nnspec.export` in onnxruntime (CPU); torch ONNX: the same "
            "architecture through `torch.onnx.export` (opset 18, with softmax and argmax as "
            "nnspec's graph has) in onnxruntime; the two ONNX graphs are timed in one process "
            "(the PyTorch worker's), in turns within each repeat, so that neither gets a "
            "quieter minute of the shared machine. PyTorch eager under `inference_mode`; NumPy: "
            "`Network.predict`. Ratios > 1: nnspec faster."
        )
        L.append("")
        rows = []
        for model, by_batch in results["infer"].items():
            for b in [str(x) for x in INFER_BATCHES]:
                row = by_batch.get(b, {})
                v = {k: row.get(k, {}).get("samples_per_s") for k in row}
                rows.append(
                    [
                        model,
                        b,
                        _fmt(v.get("nnspec_onnx")),
                        _fmt(v.get("torch_onnx")),
                        _fmt(v.get("torch_eager")),
                        _fmt(v.get("numpy")),
                        _rx(_ratio(v.get("nnspec_onnx"), v.get("torch_onnx"))),
                        _rx(_ratio(v.get("nnspec_onnx"), v.get("torch_eager"))),
                        _rx(_ratio(v.get("numpy"), v.get("torch_eager"))),
                    ]
                )
        L += _table(
            [
                "model",
                "batch",
                "nnspec ONNX (ort)",
                "torch ONNX (ort)",
                "PyTorch eager",
                "NumPy forward",
                "nnspec ONNX / torch ONNX",
                "nnspec ONNX / eager",
                "NumPy / eager",
            ],
            rows,
        )
    mem = results.get("memory")
    if mem:
        L += ["", "## Peak RSS, one epoch of dbn-logistic (Adam, batch 64)", ""]
        L.append(
            "`VmHWM` of the worker process from `/proc/self/status` (not `ru_maxrss`, which "
            "Linux carries across exec); 'before' is `VmRSS` after imports and data loading."
        )
        L.append("")
        rows = [
            [p, _fmt(r.get("before_MiB"), " MiB"), _fmt(r.get("peak_MiB"), " MiB")]
            for p, r in mem.items()
        ]
        L += _table(["peer", "RSS before training", "peak RSS"], rows)
        r = _ratio(mem.get("nnspec", {}).get("peak_MiB"), mem.get("torch", {}).get("peak_MiB"))
        if r:
            L += ["", f"nnspec / PyTorch peak RSS: {r:.2f}× (lower is better)."]
    cli = results.get("cli")
    if cli:
        L += [
            "",
            "## CLI latency (cold process, wall time)",
            "",
            "A fresh process per run, after one unmeasured run; Python's bytecode cache on, as "
            "in any installed copy (PYTHONDONTWRITEBYTECODE, set on this sandbox, is removed "
            "for these processes: with it an editable install compiles nnspec from source on "
            "every run).",
            "",
        ]
        rows = []
        for name in ("validate", "compile"):
            r = cli.get(name, {})
            what = f"`nnspec {name} specs/dbn.yaml" + (
                " -o dbn.onnx`" if name == "compile" else "`"
            )
            rows.append([what, "error" if "error" in r else f"{r['median_s']:.3f} s"])
        inproc = results.get("spec_to_onnx_inproc", {})
        for model, secs in inproc.items():
            rows.append(
                [f"in-process spec → ONNX ({model}, load_spec + build + export)", f"{secs:.3f} s"]
            )
        L += _table(["command", "median"], rows)
    L.append("")
    return "\n".join(L)
