"""Without onnxruntime (nnspec-runtime requires neither build), a model is refused with an
error that names both extras; the CLI turns it into exit code 2, not a traceback."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

# A fresh interpreter where `import onnxruntime` fails as it does when neither is installed.
HIDE = "import sys; sys.modules['onnxruntime'] = None\n"


def _python(code: str, *args: str):
    return subprocess.run(
        [sys.executable, "-c", HIDE + code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_model_without_onnxruntime_names_both_extras(tmp_path):
    code = (
        "from nnspec_runtime import Model, OnnxRuntimeMissing, DeviceError\n"
        "try:\n    Model(sys.argv[1])\n"
        "except OnnxRuntimeMissing as e:\n"
        "    assert isinstance(e, ImportError) and isinstance(e, DeviceError)\n"
        "    print(e)\n"
    )
    model = tmp_path / "m.onnx"
    from helpers import mlp_spec

    import nnspec

    nnspec.compile(mlp_spec(dtype="float32"), model)
    out = _python(code, str(model))
    assert out.returncode == 0, out.stderr
    assert "onnxruntime is not installed" in out.stdout
    assert '"nnspec-runtime[cpu]"' in out.stdout and '"nnspec-runtime[gpu]"' in out.stdout
    assert '"nnspec[cpu]" or "nnspec[gpu]"' in out.stdout


def test_cli_without_onnxruntime_exits_2_with_the_message(tmp_path):
    code = "from nnspec.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    out = _python(
        code, "compile", str(ROOT / "specs" / "iris.yaml"), "-o", str(tmp_path / "i.onnx")
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: onnxruntime is not installed")
    assert "Traceback" not in out.stderr and not (tmp_path / "i.onnx").exists()
