"""Stopping training cleanly: SIGINT/SIGTERM (or a test) ask ``fit`` to stop after the current
batch, which then writes a checkpoint (when it has a directory) and raises TrainingInterrupted.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import NnspecError


class TrainingInterrupted(NnspecError):
    """Training stopped on request (SIGINT, SIGTERM or a test) after finishing a batch.

    ``epoch`` counts from 1; ``batch`` is how many batches of it were done. The exit code is
    the shell's convention for death by that signal: 128 + its number (130, 143).
    """

    def __init__(self, epoch: int, batch: int, batches: int, directory, signum: int):
        self.epoch, self.batch, self.batches = epoch, batch, batches
        self.directory = Path(directory) if directory is not None else None
        self.signum = signum
        self.exit_code = 128 + signum
        where = f"interrupted at epoch {epoch}, batch {batch} (of {batches})"
        if self.directory is None:
            super().__init__(f"{where}; no checkpoint written (no checkpoint directory given)")
        else:
            super().__init__(f"{where}; checkpoint written to {self.directory}")


class StopRequest:
    """Asks ``fit`` to stop after the current batch. A signal handler sets it; so can a test."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def set(self, signum: int = signal.SIGINT) -> None:
        self.signum = int(signum)

    def __bool__(self) -> bool:
        return self.signum is not None


@contextmanager
def stop_on_signals(stop: StopRequest | None = None) -> Iterator[StopRequest]:
    """Within the block, SIGINT and SIGTERM set ``stop`` instead of ending the process.

    A second SIGINT while a stop is pending raises KeyboardInterrupt at once, for a user who
    does not want to wait for the batch to finish. The previous handlers are put back on exit.
    Outside the main thread Python cannot install handlers, and signals keep their behaviour.
    """
    stop = stop if stop is not None else StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            # None: a handler installed from C; the default is the closest we can restore.
            signal.signal(s, h if h is not None else signal.SIG_DFL)
