"""Measure what each onnxruntime release runs: the source of ONNXRUNTIME_SUPPORT in
runtime/nnspec_runtime/versions.py.

    python bench/onnxruntime_support.py 1.17.3 1.21.1 1.32.0   # needs uv and the registry

For each release it makes a scratch virtual environment with that onnxruntime (CPU wheel), then
opens a one-node (Relu) model of every default-domain opset from 13 to 24 at every IR version
from 7 to 13, and prints the newest opset and IR version that loaded. Not part of CI (it
downloads a wheel per release).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
import glob, re, onnxruntime as ort
ok = []
for f in glob.glob("m_*.onnx"):
    opset, ir = map(int, re.findall(r"\\d+", f))
    try:
        ort.InferenceSession(f, providers=["CPUExecutionProvider"])
        ok.append((opset, ir))
    except Exception:
        pass
print(ort.__version__, max(o for o, _ in ok), max(i for _, i in ok))
"""


def make_models(directory: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    for opset in range(13, 25):
        for ir in range(7, 14):
            model = helper.make_model(
                graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir
            )
            onnx.save(model, directory / f"m_{opset}_{ir}.onnx")


def main(releases: list[str]) -> int:
    uv = shutil.which("uv")
    if uv is None:
        print("needs uv (pip install uv)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp)
        make_models(models)
        (models / "probe.py").write_text(PROBE)
        for release in releases:
            venv = models / f"venv-{release}"
            subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True)
            env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin"}
            install = [uv, "pip", "install", "-q", f"onnxruntime=={release}", "numpy<2"]
            if subprocess.run(install, env=env).returncode:
                print(f"{release}: install failed")
                continue
            out = subprocess.run(
                [str(venv / "bin" / "python"), "probe.py"],
                cwd=models,
                capture_output=True,
                text=True,
            )
            line = out.stdout.strip().split()
            print(f"{line[0]}: newest opset {line[1]}, newest IR {line[2]}" if line else out.stderr)
            shutil.rmtree(venv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:] or ["1.32.0"]))
