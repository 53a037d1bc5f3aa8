"""Score nnspec models on Dask: one onnxruntime session per worker process, made once.

``predict(ddf, "model.onnx")`` maps every partition of a Dask DataFrame through the model
and returns a lazy Dask DataFrame of predictions (``label`` and ``p_<class>``, or the
regression targets), with the ``keep`` columns passed through and the input's index kept.
``score_file`` is the file-to-file unit of ``nnspec predict --engine dask``.

Workers receive the model's path, never a session: each worker process opens the model on
its first partition and keeps it (``sessions.worker_model``), with onnxruntime's intra-op
threads capped so that the sessions of one machine together use at most its cores
(``cluster_threads``). The model file must be readable at the same path on every worker.

Needs the ``dask`` extra: ``pip install "nnspec-runtime[dask]"`` (dask, distributed, pandas,
pyarrow).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import RuntimeModelError
from .partitions import PartitionError, score_file
from .sessions import session_counts, threads_per_worker, worker_model

INSTALL = 'pip install "nnspec-runtime[dask]" (or "nnspec[dask]")'

__all__ = [
    "INSTALL",
    "PartitionError",
    "cluster_threads",
    "predict",
    "score_file",
    "session_counts",
    "worker_model",
]


def require_dask():
    """Import dask and distributed, or say how to install them."""
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as e:
        raise RuntimeModelError(
            f"Dask is not installed ({e.name} is missing); the Dask engine needs the dask "
            f"extra: {INSTALL}"
        ) from None
    import dask

    return dask


def cluster_threads(client) -> dict[str, int]:
    """{worker address: intra-op threads}: each machine's cores shared out among the
    worker processes on it (workers × threads ≤ cores, one thread at least)."""
    import os

    cores = client.run(os.cpu_count)  # {address: cores of that worker's machine}
    workers = client.scheduler_info(n_workers=-1)["workers"]
    per_host: dict[str, int] = {}
    for info in workers.values():
        per_host[info["host"]] = per_host.get(info["host"], 0) + 1
    return {
        addr: threads_per_worker(cores.get(addr) or 1, per_host[info["host"]])
        for addr, info in workers.items()
    }


def _threads_here(threads) -> int | None:
    """The thread count for this worker: an int, None (onnxruntime's default), or looked up
    by this worker's address in a ``cluster_threads`` map."""
    if not isinstance(threads, dict):
        return threads
    try:
        from distributed import get_worker

        return threads.get(get_worker().address)
    except (ImportError, ValueError):  # not running on a distributed worker
        return None


def _predict_frame(frame, model_path: str, keep: list[str], threads):
    """One partition (a pandas DataFrame) -> its predictions (a pandas DataFrame)."""
    import numpy as np
    import pandas as pd

    from .partitions import prediction_columns

    model = worker_model(model_path, _threads_here(threads))
    names = model.feature_names
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise PartitionError(
            f"a partition lacks the model's feature column(s) {', '.join(missing[:5])}; got "
            f"{', '.join(map(str, frame.columns[:8]))}"
        )
    x = frame[names].to_numpy(dtype=np.float32)
    out = pd.DataFrame(index=frame.index)
    for k in keep:
        out[k] = frame[k]
    for name, values in prediction_columns(model, model.predict(x)).items():
        out[name] = values
    return out


def predict(ddf, model_path: str | Path, *, keep=(), threads="auto"):
    """Predictions of the model at ``model_path`` for every row of the Dask DataFrame
    ``ddf`` (which holds the model's feature columns by name), as a lazy Dask DataFrame.

    keep : columns of ``ddf`` to carry into the result (keys, ids), before the predictions.
    threads : onnxruntime intra-op threads per worker session: "auto" (each machine's cores
        shared out among its worker processes when a distributed ``Client`` is active, else
        onnxruntime's default), an int, or None (onnxruntime's default).
    """
    require_dask()
    import numpy as np
    import pandas as pd

    from ..model import Model
    from .partitions import prediction_columns

    model_path = str(Path(model_path).resolve())
    keep = list(keep)
    # The meta (names and dtypes of the result) from a zero-row prediction on the client;
    # this session stays here and is never sent anywhere.
    probe = Model(model_path, device="cpu", intra_op_threads=1)
    meta = pd.DataFrame(index=ddf._meta.index)
    for k in keep:
        meta[k] = ddf._meta[k]
    empty = np.zeros((0, probe.n_features or 1), np.float32)
    for name, values in prediction_columns(probe, probe.predict(empty)).items():
        meta[name] = values
    if threads == "auto":
        threads = None
        try:
            from distributed import get_client

            threads = cluster_threads(get_client())
        except ValueError:  # no distributed client: the local schedulers
            pass
    return ddf.map_partitions(_predict_frame, model_path, keep, threads, meta=meta)
