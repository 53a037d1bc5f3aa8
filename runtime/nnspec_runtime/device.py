"""Which onnxruntime execution providers a model runs on, with which options, and why not.

The choices here are plain data (provider lists, option dicts, session config entries), so
that they are tested on a machine without a GPU; ``model.py`` makes the session from them.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# cuDNN's MaxPool failed with CUDNN_STATUS_NOT_SUPPORTED at batch 65536 on an H200 (65535 ran):
# on CUDA no single run gets more rows than this.
MAX_CUDA_ROWS = 65535
# onnxruntime refuses a CPU provider listed beside this entry ("Conflicting session
# configuration"), so strict sessions list CUDA alone.
NO_CPU_FALLBACK = "session.disable_cpu_ep_fallback"
SWAP = 'pip uninstall -y onnxruntime onnxruntime-gpu && pip install "onnxruntime-gpu[cuda,cudnn]"'


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class CudaOptions:
    """How a CUDA session is made.

    Parameters
    ----------
    device_id : the GPU's ordinal (``CUDA_VISIBLE_DEVICES`` numbering).
    use_tf32 : TF32 matrix products (onnxruntime's default: about 1e-3 relative error against
        float32; ``False`` gives float32 parity, rtol 1e-4 / atol 1e-5).
    gpu_mem_limit : the most bytes onnxruntime's CUDA memory arena may take, or ``None``
        (no limit).
    strict : no CPU fallback: every node must have a CUDA kernel, or the session is refused.
    """

    device_id: int = 0
    use_tf32: bool = True
    gpu_mem_limit: int | None = None
    strict: bool = False

    def __post_init__(self):
        if not _is_int(self.device_id) or self.device_id < 0:
            raise ValueError(f"device_id must be a non-negative integer, got {self.device_id!r}")
        if not isinstance(self.use_tf32, bool):
            raise ValueError(f"use_tf32 must be True or False, got {self.use_tf32!r}")
        limit = self.gpu_mem_limit
        if limit is not None and (not _is_int(limit) or limit < 1):
            raise ValueError(f"gpu_mem_limit must be a positive number of bytes, got {limit!r}")
        if not isinstance(self.strict, bool):
            raise ValueError(f"strict must be True or False, got {self.strict!r}")

    def provider_options(self) -> dict[str, str]:
        """The CUDA provider's options, as the strings onnxruntime takes."""
        options = {"device_id": str(self.device_id), "use_tf32": "1" if self.use_tf32 else "0"}
        if self.gpu_mem_limit is not None:
            options["gpu_mem_limit"] = str(self.gpu_mem_limit)
        return options

    def providers(self) -> list:
        """The providers of a CUDA session, in onnxruntime's order of preference."""
        cuda = (CUDA, self.provider_options())
        return [cuda] if self.strict else [cuda, CPU]


def session_config(providers: list) -> dict[str, str]:
    """Session config entries for ``providers``: a list without the CPU provider is a strict
    one, and onnxruntime must then refuse a node it would otherwise run on the CPU."""
    names = [p[0] if isinstance(p, tuple) else p for p in providers]
    return {NO_CPU_FALLBACK: "1"} if CPU not in names else {}


_preloaded = False
# The libraries that onnxruntime.preload_dlls() reported it could not load, by file name.
_unloaded: list[str] = []
_FAILED = re.compile(r"^Failed to load (\S+?): ", re.MULTILINE)


def preload_cuda_libraries(ort) -> list[str]:
    """Load the CUDA and cuDNN libraries that pip installed with onnxruntime-gpu (the
    ``nvidia-*`` wheels), which the dynamic loader does not look for; once per process.

    Returns the file names of the libraries it could not load (``libcublasLt.so.13``, ...).
    onnxruntime prints them to stdout; they are kept instead, for the ``DeviceError`` of a
    CUDA session that then fails to start (with ``device="auto"`` the CPU is used, quietly).
    """
    global _preloaded, _unloaded
    # preload_dlls came with onnxruntime 1.21; older versions find CUDA on the library path.
    if _preloaded or not hasattr(ort, "preload_dlls"):
        return _unloaded
    report = io.StringIO()
    try:
        # Once per process, at the first CUDA model: a print from another thread in this
        # moment would land in the report too, which only costs that line.
        with contextlib.redirect_stdout(report):
            ort.preload_dlls()
    except Exception:  # a missing library shows later, when the session is made
        pass
    _unloaded = [Path(name).name for name in _FAILED.findall(report.getvalue())]
    _preloaded = True
    return _unloaded


def cuda_build(ort) -> str | None:
    """The CUDA version this onnxruntime was built for ("13.0"), or None (a CPU build)."""
    try:
        info = importlib.import_module(f"{ort.__name__}.capi.build_and_package_info")
    except Exception:  # a stand-in module, or an onnxruntime without the file
        return None
    return getattr(info, "cuda_version", None) or None


def cuda_driver_error(load=None) -> str | None:
    """Why the NVIDIA driver's library (libcuda.so.1, nvcuda.dll) does not load, or None.

    onnxruntime-gpu with its CUDA wheels but no driver (a machine without a GPU) falls back
    to the CPU; this names the cause. ``load`` stands in for ``ctypes.CDLL`` in tests.
    """
    import ctypes
    import sys

    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    if sys.platform == "darwin":
        return None
    try:
        (load or ctypes.CDLL)(name)
    except OSError as e:
        return f"{name} did not load ({e})"
    return None


def onnxruntime_distributions() -> list[tuple[str, str]]:
    """(name, version) of each installed distribution that ships the ``onnxruntime`` package
    (onnxruntime, onnxruntime-gpu, onnxruntime-directml, ...) into the directory that Python
    imports it from: two there overwrite each other's files."""
    # Only on the error paths: importlib.metadata costs the CLI's cold start.
    import importlib.metadata
    import importlib.util
    import os

    spec = importlib.util.find_spec("onnxruntime")
    where = list(spec.submodule_search_locations or []) if spec else []
    home = os.path.realpath(os.path.dirname(where[0])) if where else None
    found = set()
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if not name.startswith("onnxruntime") or "extensions" in name:
            continue
        # A copy elsewhere on the path (another site-packages) is shadowed, not overwritten.
        if home is None or os.path.realpath(str(dist.locate_file(""))) == home:
            found.add((name, dist.version))
    return sorted(found)


def install_hint(
    distributions: list[tuple[str, str]] | None = None,
    unloaded: list[str] | None = None,
    cuda_version: str | None = None,
) -> str:
    """What to do about the onnxruntime installation when CUDA cannot be used.

    ``unloaded``: the libraries ``preload_cuda_libraries`` could not load; ``cuda_version``:
    the CUDA version onnxruntime-gpu was built for.
    """
    dists = onnxruntime_distributions() if distributions is None else distributions
    names = {name for name, _ in dists}
    if "onnxruntime-gpu" in names and len(names) > 1:
        both = " and ".join(f"{name} {version}" for name, version in dists)
        return (
            f"{both} are installed: they write the same onnxruntime/ directory, and whichever "
            f"was installed last wins; keep only onnxruntime-gpu: {SWAP}"
        )
    cuda = f"CUDA {cuda_version.split('.')[0]}" if cuda_version else "CUDA"
    libraries = (
        f"the {cuda} libraries that onnxruntime-gpu needs did not load{{}} "
        f'({", ".join(unloaded or [])}): pip install "onnxruntime-gpu[cuda,cudnn]" brings them '
        f"as nvidia-* wheels, or put {cuda} and cuDNN on LD_LIBRARY_PATH"
    )
    if "onnxruntime-gpu" in names:
        # The driver first: without a GPU, installing the CUDA libraries is 2 GB of no use.
        driver = cuda_driver_error()
        if driver:
            also = f"; {libraries.format(' either')}" if unloaded else ""
            return (
                f"the NVIDIA driver is missing: {driver}; a machine without an NVIDIA GPU "
                f"runs models with device='cpu' (or 'auto'){also}"
            )
        if unloaded:
            return libraries.format("")
        return (
            "onnxruntime-gpu is installed: check the NVIDIA driver (nvidia-smi) and the "
            f'{cuda} and cuDNN libraries (pip install "onnxruntime-gpu[cuda,cudnn]")'
        )
    return f"install onnxruntime-gpu in place of onnxruntime ({SWAP}), or use device='cpu'"
