"""The GPU proof of ``nnspec_runtime``'s CUDA deployment, as one prepared run.

Nothing is trained: the shipped specs (dbn, lenet, alexnet) are compiled with their seeds,
then run with ``device="cuda"``. It checks parity against the CPU provider (``use_tf32=False``:
rtol 1e-4, atol 1e-5; with TF32, onnxruntime's default, the error is reported), the provider
actually used and a strict session (every node on the GPU), chunking past 65535 rows, and
times batches 1, 256, 4096 and 65536 through ``Model.run``, ``session.run`` and IOBinding, and
sets the DBN beside a hand-built graph of the same network and PyTorch, in the same run with
the same weights (``bench/gpu_peers.py``: issue 6's "at least as well" as a ratio). The
results replace the ``## GPU`` section of docs/performance.md (``python -m bench`` rewrites
that file without it: run this again after it).

On the GPU machine the image lacks pydantic (nnspec needs it to compile the specs) and has the
CPU build of onnxruntime. Here, from the project root, once:

    bash ../shared/gpu/make-ort-gpu-chunks.sh      # onnxruntime-gpu in four pieces, .ortgpu1-4
    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        -d .whl pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
        typing-inspection==0.4.5 typing-extensions==4.16.0

then the three transfer calls that script prints, and as the fourth (carry .ortgpu4 and .whl):

    bash .ortgpu4/install-on-device.sh &&
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
    export PYTHONPATH=/root/ort/site:/tmp/site:runtime:. PYTHONUNBUFFERED=1 &&
    python3 -m bench.gpu_proof --device cuda --section $OUT/gpu_section.md \
        --json $OUT/gpu_proof.json;
    NNSPEC_REQUIRE_GPU=1 python3 -m pytest -m gpu tests/runtime/test_gpu.py -q

and back here ``python -m bench.gpu_proof --apply FILES_AT/gpu_section.md`` puts the section
into docs/performance.md. The proof should take 2 to 4 minutes on an H200 (estimated from a
dry run of its CUDA branches on the CPU; not yet timed there). ``--device cpu --quick``
is a smoke run on any machine; it writes Markdown only where ``--doc`` or ``--section`` say.
``--section`` and ``--json`` are rewritten after each model, so a run stopped at the device's
time limit still brings back what it finished; an error in one model is recorded (FAIL) and
the next one runs. Exit code 1 when a check fails, 2 when CUDA does not start at all.

Rehearsed on the CPU (2026-11-26): the steps above, run as written in a Python 3.12 venv with
the image's onnx 1.23.1 and onnxruntime 1.30.0, reach the CUDA check and stop there with
"the NVIDIA driver is missing" (exit 2) in 25 s, the pieces and wheels being 54 MB of the
64 MiB a call carries.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
RTOL, ATOL = 1e-4, 1e-5
MODELS = ("dbn", "lenet", "alexnet")
BATCHES = (1, 256, 4096, 65536)
# 65536 AlexNet images are 40 GB of input: its batches stop here.
ALEXNET_BATCHES = (1, 256)
CHUNK_ROWS = (65536, 70000)
# The DBN against a hand-built graph and PyTorch (bench/gpu_peers.py), on CUDA.
PEERS = (4096, 65536)


def log(text: str) -> None:
    print(text, flush=True)


# -- models -----------------------------------------------------------------------------------
def compile_models(names, dest: Path) -> dict[str, Path]:
    """``nnspec compile specs/NAME.yaml`` for each name: seeded, untrained."""
    from nnspec import cli

    paths = {}
    for name in names:
        path = dest / f"{name}.onnx"
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["compile", str(ROOT / "specs" / f"{name}.yaml"), "-o", str(path)])
        if code:
            raise SystemExit(f"nnspec compile specs/{name}.yaml failed with exit code {code}")
        log(
            f"compiled {name}: {path.stat().st_size / 2**20:.1f} MiB in "
            f"{time.perf_counter() - start:.1f} s"
        )
        paths[name] = path
    return paths


def sample_inputs(name: str, shape: tuple, n: int) -> np.ndarray:
    """The spec's own data where it has some (digits28 for dbn and lenet), else N(0, 1)."""
    import nnspec
    from nnspec import pipeline

    dataset = pipeline.load_data(nnspec.load_spec(ROOT / "specs" / f"{name}.yaml"))
    if dataset is not None:
        x = np.asarray(dataset.x, dtype=np.float32)
        return np.resize(x, (n, x.shape[1])).reshape(n, *shape)
    return np.random.default_rng(0).standard_normal((n, *shape), dtype=np.float32)


# -- checks -----------------------------------------------------------------------------------
def compare(got: dict, want: dict) -> dict:
    """Errors of ``got`` against ``want``: max abs error, the worst |a - b| / (atol + rtol |b|)
    (np.allclose's test: <= 1 passes) over the probabilities, and label agreement."""
    a, b = got["probabilities"].astype(np.float64), want["probabilities"].astype(np.float64)
    err = np.abs(a - b)
    return {
        "max_abs_err": float(err.max()),
        "worst_ratio": float((err / (ATOL + RTOL * np.abs(b))).max()),
        "labels_agree": float(np.mean(got["label"] == want["label"])),
    }


def parity(Model, path: Path, x: np.ndarray, device: str) -> dict:
    cpu = Model(path, device="cpu").run(x)
    exact = Model(path, device=device, use_tf32=False)
    out = {"samples": len(x), "provider": exact.provider, "device": exact.device}
    out["fp32"] = compare(exact.run(x), cpu)
    out["fp32"]["pass"] = out["fp32"]["worst_ratio"] <= 1.0
    out["tf32"] = compare(Model(path, device=device, use_tf32=True).run(x), cpu)
    try:
        strict = Model(path, device=device, strict=True, use_tf32=False)
        out["strict"] = f"ok ({strict.provider})"
    except Exception as e:  # the proof records why
        out["strict"] = f"refused: {str(e)[:160]}"
    out["pass"] = out["fp32"]["pass"] and (device != "cuda" or out["provider"] == CUDA)
    return out


class _Spy:
    """A session that records the rows of each run."""

    def __init__(self, session, input_name: str):
        self._session, self._name, self.rows = session, input_name, []

    def run(self, names, feeds):
        self.rows.append(len(feeds[self._name]))
        return self._session.run(names, feeds)

    def __getattr__(self, name):
        return getattr(self._session, name)


def chunking(Model, path: Path, block: np.ndarray, device: str, rows: int, ask: int, limit: int):
    """Run ``rows`` rows (``block`` repeated) with ``chunk_size=ask``: each onnxruntime run
    must hold at most ``limit`` rows, and the result must match the CPU on the block."""
    model = Model(path, device=device, chunk_size=ask, use_tf32=False)
    spy = _Spy(model.session, model.input_name)
    model.session = spy
    reps = -(-rows // len(block))
    x = np.concatenate([block] * reps)[:rows]
    out = model.run(x)
    want = Model(path, device="cpu").run(block)
    tiled = {k: np.concatenate([v] * reps)[:rows] for k, v in want.items()}
    errors = compare(out, tiled)
    ok = max(spy.rows) <= limit and sum(spy.rows) == rows and errors["worst_ratio"] <= 1.0
    return {
        "rows": rows,
        "chunk_size_asked": ask,
        "chunk_size_used": model.chunk_size,
        "runs": spy.rows,
        **errors,
        "pass": bool(ok),
    }


def one_big_run(path: Path, block: np.ndarray, rows: int) -> str:
    """What one raw onnxruntime CUDA run of ``rows`` rows does (why the runtime chunks)."""
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    options = ort.SessionOptions()
    options.log_severity_level = 4
    x = np.concatenate([block] * (-(-rows // len(block))))[:rows]
    try:
        session = ort.InferenceSession(
            str(path), options, providers=[("CUDAExecutionProvider", {"use_tf32": "0"})]
        )
        session.run(None, {session.get_inputs()[0].name: x})
        return f"ran (on {session.get_providers()[0]})"
    except Exception as e:  # the proof records why
        text = str(e)
        word = "CUDNN_STATUS_NOT_SUPPORTED" if "CUDNN_STATUS_NOT_SUPPORTED" in text else text[:160]
        return f"failed: {word}"


# -- timing -----------------------------------------------------------------------------------
def timings(Model, path: Path, name: str, device: str, batches, quick: bool) -> list[dict]:
    from nnspec_runtime.bench import even_chunks, measure
    from nnspec_runtime.device import MAX_CUDA_ROWS

    rows = []
    budget = dict(repeats=5 if quick else 50, warmup=1 if quick else 3)
    budget["max_seconds"] = 0.2 if quick else 1.5

    def cell(model, batch, path_, tf32):
        default = model.chunk_size
        if model.device == "cuda":  # the fewest equal runs (65536 rows: two of 32768)
            model.chunk_size = even_chunks(batch, MAX_CUDA_ROWS)
        if path_ == "session" and batch > model.chunk_size:
            model.chunk_size = default
            return
        r = measure(model, batch, path_, **budget)
        model.chunk_size = default
        rows.append({"model": name, "tf32": tf32, **r.as_dict()})
        log(
            f"  {name} {r.device} batch {batch:>6} {path_:<9} {r.throughput:>14,.0f} samples/s, "
            f"p50 {r.latency_ms(50):.3f} ms"
        )

    model = Model(path, device=device)
    for batch in batches:
        for path_ in ("run", "session", "iobinding"):
            cell(model, batch, path_, model.device == "cuda")
    if device == "cuda":
        exact = Model(path, device=device, use_tf32=False)
        for path_ in ("run", "iobinding"):
            cell(exact, 4096 if 4096 in batches else batches[-1], path_, False)
        cpu = Model(path, device="cpu")
        for batch in [b for b in batches if b <= 4096][: 1 if name == "alexnet" else None]:
            cell(cpu, batch, "run", False)
    return rows


# -- report -----------------------------------------------------------------------------------
def nvidia_smi() -> tuple[str, str]:
    try:
        out = (
            subprocess.run(
                [
                    "nvidia-smi",
                    "--query-gpu=name,driver_version,memory.total",
                    "--format=csv,noheader",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            .stdout.strip()
            .splitlines()[0]
        )
        name, driver, memory = (s.strip() for s in out.split(","))
        return f"{name} ({memory})", driver
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return "none found (nvidia-smi failed)", "n/a"


def _f(v: float) -> str:
    return f"{v:.2e}"


def markdown(r: dict) -> str:
    P = "use_tf32 off: rtol 1e-4, atol 1e-5"
    lines = [
        "## GPU",
        "",
        f"Generated by `bench/gpu_proof.py` (`{r['command']}`), {r['date']}, in "
        f"{r['wall_s']:.0f} s. "
        "Nothing is trained: the shipped specs are compiled with their seeds (`nnspec compile`). "
        "Not part of CI; `python -m bench` rewrites this file without this section, so run the "
        "proof again after it.",
        "",
        f"- card: {r['card']}, driver {r['driver']}",
        f"- onnxruntime {r['onnxruntime']} ({r['distributions']}), providers available: "
        f"{', '.join(r['providers'])}",
        f"- host: {r['host']}; python {r['python']}, numpy {r['numpy']}",
        "",
        "### Parity, CUDA provider vs CPU provider",
        "",
        f"Probabilities; 'ratio' is the worst |cuda - cpu| / (atol + rtol·|cpu|) ({P}): ≤ 1 "
        "passes. TF32 (onnxruntime's default) is reported, not judged. 'strict' is a session "
        "with the CPU fallback disabled (`strict=True`): ok means every node has a CUDA kernel.",
        "",
        "| model | samples | provider used | strict | fp32: max abs err | fp32: ratio | TF32: max "
        "abs err | TF32: ratio | TF32: labels agree | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, p in r["parity"].items():
        lines.append(
            f"| {name} | {p['samples']} | {p['provider']} | {p['strict']} | "
            f"{_f(p['fp32']['max_abs_err'])} | {p['fp32']['worst_ratio']:.3f} | "
            f"{_f(p['tf32']['max_abs_err'])} | {p['tf32']['worst_ratio']:.2f} | "
            f"{p['tf32']['labels_agree']:.4f} | {'PASS' if p['pass'] else 'FAIL'} |"
        )
    for name, error in r.get("errors", {}).items():
        lines.append(f"\n**{name} stopped by an error**: `{error}` (FAIL).")
    lines += [
        "",
        "### Chunking",
        "",
        f"`Model.run` on more rows than one onnxruntime run may take (at most {r['limit']:,} "
        "rows a run here), compared with the CPU provider (use_tf32 off).",
        "",
        "| model | rows | chunk_size asked | used | rows per run | ratio | result |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in r["chunking"]:
        lines.append(
            f"| {c['model']} | {c['rows']:,} | {c['chunk_size_asked']:,} | "
            f"{c['chunk_size_used']:,} | {', '.join(f'{n:,}' for n in c['runs'])} | "
            f"{c['worst_ratio']:.3f} | {'PASS' if c['pass'] else 'FAIL'} |"
        )
    for name, what in r.get("one_big_run", {}).items():
        lines.append(f"\nOne raw onnxruntime CUDA run of {name} at 65,536 rows: {what}.")
    lines += [
        "",
        "### Throughput and latency",
        "",
        "Per call, after warm-up: `run` is `Model.run` (NumPy in and out, inputs checked, "
        "copies to and from the GPU), `session` is onnxruntime's `session.run` on NumPy "
        "(unchecked, one run), `iobinding` keeps inputs and outputs on the device "
        "(`Model.bind(x, keep_on_device=True).run()`; only the runs are timed). "
        f"AlexNet stops at batch {max(ALEXNET_BATCHES)} (65,536 images would be 40 GB of "
        "input). cpu rows: the CPU provider on the same machine, for scale.",
        "",
        "| model | device | batch | path | TF32 | samples/s | p50 ms | p90 ms | p99 ms | runs "
        "| chunk |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in r["timings"]:
        tf32 = ("on" if t["tf32"] else "off") if t["device"] == "cuda" else ""
        lines.append(
            f"| {t['model']} | {t['device']} | {t['batch']:,} | {t['path']} | {tf32} | "
            f"{t['samples_per_s']:,.0f} | {t['p50_ms']:.3f} | {t['p90_ms']:.3f} | "
            f"{t['p99_ms']:.3f} | {t['runs']} | {min(t['chunk_size'], t['batch']):,} |"
        )
    if "peers" in r:
        from .gpu_peers import markdown as peer_lines

        lines += peer_lines(r["peers"], r.get("device", "cuda"))
    return "\n".join(lines) + "\n"


def _section_lines(lines: list[str], heading: str = "## GPU") -> tuple[int, int] | None:
    """(start, end) of the ``heading`` section among a doc's lines: up to the next '## '."""
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, end


def read_section(doc: Path, heading: str = "## GPU") -> str | None:
    """The doc's ``heading`` section, if the doc exists and has one."""
    lines = doc.read_text().splitlines(keepends=True) if doc.exists() else []
    span = _section_lines(lines, heading)
    return "".join(lines[span[0] : span[1]]) if span else None


def replace_section(doc: Path, section: str) -> None:
    """Put ``section`` (starting with its "## " heading, "## GPU" here) in place of the doc's
    own section of that heading, or at its end."""
    text = doc.read_text() if doc.exists() else ""
    lines = text.splitlines(keepends=True)
    span = _section_lines(lines, section.splitlines()[0].rstrip())
    if span is None:
        body = text.rstrip("\n")
        doc.write_text((body + "\n\n" if body else "") + section)
        return
    start, end = span
    tail = "".join(lines[end:])
    doc.write_text("".join(lines[:start]) + section + ("\n" + tail if tail else ""))


# -- main -------------------------------------------------------------------------------------
CUDA = "CUDAExecutionProvider"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.gpu_proof", description=__doc__.split("\n")[0]
    )
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--quick", action="store_true", help="small batches, few runs (smoke test)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: all)")
    p.add_argument(
        "--doc",
        help="Markdown file whose '## GPU' section is replaced (default: "
        "docs/performance.md with --device cuda; none with --device cpu)",
    )
    p.add_argument("--section", help="also write the '## GPU' section alone to this file")
    p.add_argument("--json", help="also write every number as JSON here")
    p.add_argument(
        "--apply",
        metavar="SECTION",
        help="measure nothing: put this file (a --section written on the GPU machine) in "
        "place of the '## GPU' section of --doc (default: docs/performance.md)",
    )
    args = p.parse_args(argv)
    if args.apply:
        doc = Path(args.doc) if args.doc else DOC
        section = Path(args.apply).read_text()
        if not section.startswith("## GPU\n"):
            p.error(f"--apply: expected a file that starts with '## GPU', got {args.apply}")
        replace_section(doc, section)
        log(f"wrote the GPU section of {doc}")
        return 0
    names = [n for n in args.models.split(",") if n]
    if unknown := set(names) - set(MODELS):
        p.error(
            f"--models: unknown {', '.join(sorted(unknown))}; expected some of {', '.join(MODELS)}"
        )
    doc = Path(args.doc) if args.doc else (DOC if args.device == "cuda" else None)

    import onnxruntime as ort

    from nnspec_runtime import Model
    from nnspec_runtime.device import MAX_CUDA_ROWS, onnxruntime_distributions

    start = time.perf_counter()
    card, driver = nvidia_smi() if args.device == "cuda" else ("none (CPU run)", "n/a")
    report = {
        "command": "python3 -m bench.gpu_proof " + " ".join(argv or sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": args.device,
        "card": card,
        "driver": driver,
        "onnxruntime": ort.__version__,
        "distributions": ", ".join(f"{n} {v}" for n, v in onnxruntime_distributions()),
        "providers": ort.get_available_providers(),
        "host": f"{platform.processor() or platform.machine()}, {platform.platform()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "limit": MAX_CUDA_ROWS if args.device == "cuda" else 1000,
        "parity": {},
        "chunking": [],
        "one_big_run": {},
        "timings": [],
        "errors": {},
    }
    log(f"card {card}, driver {driver}, onnxruntime {ort.__version__}")

    def save() -> str:
        """The report so far, to --json and --section: a run stopped at the device's time
        limit still leaves the models it finished."""
        report["wall_s"] = time.perf_counter() - start
        report["pass"] = passed(report)
        section = markdown(report)
        if args.section:
            Path(args.section).write_text(section)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return section

    with tempfile.TemporaryDirectory() as tmp:
        paths = compile_models(names, Path(tmp))
        if args.device == "cuda":
            # Minutes of device time are scarce: a machine whose CUDA does not start stops
            # here, with the runtime's reason, instead of failing every check below.
            from nnspec_runtime import DeviceError

            try:
                Model(next(iter(paths.values())), device="cuda")
            except DeviceError as e:
                log(f"the GPU proof cannot run: {e}")
                return 2
        for name, path in paths.items():
            try:
                prove(report, Model, name, path, args)
            except Exception as e:  # one model's failure must not cost the others' numbers
                traceback.print_exc()
                report["errors"][name] = f"{type(e).__name__}: {str(e)[:300]}"
                log(f"{name}: stopped by {report['errors'][name]}")
            save()
        if "dbn" in paths:
            # Last: torch is imported here, and a crash in it must not cost the rest.
            from . import gpu_peers

            batches = ((64,) if args.quick else (256, 4096)) if args.device == "cpu" else PEERS
            try:
                report["peers"] = gpu_peers.compare(
                    paths["dbn"], args.device, batches, quick=args.quick, log=log
                )
            except Exception as e:  # recorded, as a model's error is
                traceback.print_exc()
                report["errors"]["dbn peers"] = f"{type(e).__name__}: {str(e)[:300]}"
    section = save()
    if doc is not None:
        replace_section(doc, section)
        log(f"wrote the GPU section of {doc}")
    else:
        log(section)
    ok = report["pass"]
    log(f"{'all checks passed' if ok else 'SOME CHECKS FAILED'} in {report['wall_s']:.0f} s")
    return 0 if ok else 1


def passed(report: dict) -> bool:
    return (
        not report["errors"]
        and all(p["pass"] for p in report["parity"].values())
        and all(c["pass"] for c in report["chunking"])
        and report.get("peers", {}).get("same_network", True)
    )


def prove(report: dict, Model, name: str, path: Path, args) -> None:
    """Every check and timing of one model, into ``report``."""
    from nnspec_runtime.device import MAX_CUDA_ROWS

    shape = Model(path, device="cpu").input_shape
    n = 32 if name == "alexnet" else (64 if args.quick else 1797)
    x = sample_inputs(name, shape, n)
    report["parity"][name] = par = parity(Model, path, x, args.device)
    log(
        f"{name}: provider {par['provider']}, strict {par['strict']}, fp32 ratio "
        f"{par['fp32']['worst_ratio']:.3f}, TF32 max abs err "
        f"{par['tf32']['max_abs_err']:.2e}: {'PASS' if par['pass'] else 'FAIL'}"
    )
    if name != "alexnet":
        if args.device == "cuda":
            cases = [(rows, 100000, MAX_CUDA_ROWS) for rows in CHUNK_ROWS]
        else:
            cases = [(2500, 1000, 1000)]
        for rows, ask, limit in cases:
            c = chunking(Model, path, x[:256], args.device, rows, ask, limit)
            report["chunking"].append({"model": name, **c})
            log(f"{name}: {rows} rows in runs of {c['runs']}: {'PASS' if c['pass'] else 'FAIL'}")
        if args.device == "cuda" and name == "lenet":
            what = one_big_run(path, x[:256], 65536)
            report["one_big_run"][name] = what
            log(f"lenet, one raw run of 65536 rows: {what}")
    if args.quick:
        batches = (1, 64)
    else:
        batches = ALEXNET_BATCHES if name == "alexnet" else BATCHES
    report["timings"] += timings(Model, path, name, args.device, batches, args.quick)


if __name__ == "__main__":
    sys.exit(main())
