"""Smoke test of the benchmark suite: nnspec only, one small case, --quick (no peers needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_nnspec_iris(tmp_path):
    md, js = tmp_path / "perf.md", tmp_path / "perf.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "nnspec,iris,train,infer"]
        + ["-o", str(md), "--json", str(js)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(js.read_text())
    assert not results["errors"]
    train = results["train"]
    assert set(train) == {f"iris/{o}/b{b}" for o in ("sgd", "adam") for b in (64, 256)}
    for row in train.values():
        r = row["nnspec"]
        assert r["samples_per_s"] > 0 and r["samples"] >= 150
        assert all(t > 0 for t in r["seconds"])
    infer = results["infer"]["iris"]
    for b in ("1", "1024"):
        assert infer[b]["nnspec_onnx"]["samples_per_s"] > 0
        assert infer[b]["numpy"]["samples_per_s"] > 0
    text = md.read_text()
    assert "| iris/sgd/b64 |" in text and "## Targets" in text
    assert "| every MLP vs scikit-learn |" in text
