"""A Dask client for a command: a local cluster of worker processes, or an existing scheduler.

``--workers N`` starts a ``LocalCluster`` of N single-threaded worker *processes* (the GIL
never serializes them; onnxruntime and NumPy get their own threads, capped by the caller);
``--scheduler ADDRESS`` connects to a running cluster (``dask scheduler`` + ``dask worker``,
dask-jobqueue, dask-kubernetes, Coiled) and starts nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os

from ..errors import NnspecError

INSTALL = 'pip install "nnspec[dask]"'


class EngineError(NnspecError):
    """The Dask engine cannot run: not installed, no scheduler at the address, a task lost."""


def require_distributed():
    """``distributed``, or an error that says how to install it."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as e:
        raise EngineError(
            f"--engine dask needs Dask, which is not installed ({e.name} is missing): {INSTALL} "
            "(dask, distributed, pandas, pyarrow)"
        ) from None
    return distributed


def default_workers() -> int:
    """One worker process per usable core."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, *, quiet=True):
    """A ``distributed.Client``: connected to ``scheduler``, or to a local cluster of
    ``workers`` processes (default: one per core) that is shut down on exit."""
    distributed = require_distributed()
    if quiet:  # worker start-up chatter and the dashboard's absence are not the user's news
        for name in ("distributed", "distributed.nanny", "distributed.scheduler"):
            logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise EngineError(
                f"--scheduler {scheduler}: cannot connect to a Dask scheduler there ({e}); "
                "expected the address a running scheduler prints, such as tcp://host:8786"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = distributed.LocalCluster(
        n_workers=workers or default_workers(),
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        # The workers' own logs: a task's failure is reported once, by the command, as a
        # located error, not again as a worker's traceback.
        silence_logs=logging.CRITICAL if quiet else logging.WARNING,
    )
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def describe(client) -> str:
    """ "3 workers on 1 machine (tcp://...)" for messages."""
    info = client.scheduler_info(n_workers=-1)
    workers = info["workers"]
    hosts = {w["host"] for w in workers.values()}
    threads = sum(w["nthreads"] for w in workers.values())
    return (
        f"{len(workers)} worker{'s' if len(workers) != 1 else ''} ({threads} task threads) on "
        f"{len(hosts)} machine{'s' if len(hosts) != 1 else ''}, scheduler {info['address']}"
    )
