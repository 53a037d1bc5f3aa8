"""One onnxruntime session per worker process, made on first use and then shared.

A Dask task carries only the model's *path* (and the thread count): the session itself is
never pickled (onnxruntime sessions cannot be, and re-creating one per partition would cost
more than scoring a small partition). Every task run in a process, on any of its threads,
gets the same ``Model``; ``Model.predict`` may be called from several threads at once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_lock = threading.Lock()
_models: dict[tuple, object] = {}
# How many sessions this process made, by model path: a test asks the workers for it.
created: dict[str, int] = {}


def _key(path: str | Path, threads: int | None, device: str) -> tuple:
    p = Path(path).resolve()
    st = p.stat()
    # A model rewritten in place (same path, new file) gets a new session, not the old one.
    return (str(p), st.st_mtime_ns, st.st_size, threads, device)


def worker_model(path: str | Path, threads: int | None = None, device: str = "cpu"):
    """This process's ``Model`` of ``path``, created once (the first caller makes it while the
    others wait for it)."""
    from ..errors import RuntimeModelError
    from ..model import Model

    try:
        key = _key(path, threads, device)
    except FileNotFoundError:
        raise RuntimeModelError(f"{path}: no such model file (on host {_host()})") from None
    model = _models.get(key)
    if model is not None:
        return model
    with _lock:
        model = _models.get(key)
        if model is None:
            model = Model(path, device=device, intra_op_threads=threads)
            _models[key] = model
            created[key[0]] = created.get(key[0], 0) + 1
    return model


def session_counts() -> dict[str, int]:
    """{model path: sessions made} in this process (for tests and diagnostics)."""
    return dict(created)


def _host() -> str:
    return os.uname().nodename if hasattr(os, "uname") else "?"


def threads_per_worker(cores: int, workers_on_host: int) -> int:
    """Intra-op threads for each of ``workers_on_host`` sessions sharing ``cores``: their
    product never exceeds the cores (at least one thread each)."""
    return max(1, cores // max(1, workers_on_host))
