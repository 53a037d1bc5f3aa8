"""Exclusive locks on an open file, on POSIX and on Windows.

``fcntl`` does not exist on Windows, so importing it at the top of a module makes every command
that writes a model fail there at import time. POSIX gets ``fcntl.flock`` (the lock goes with
the process, killed or not); Windows gets ``msvcrt.locking`` on the file's first byte, which
the system also releases when the process ends. Both are advisory between nnspec processes,
which is all the export lock and the checkpoint directory's owner need.
"""

from __future__ import annotations

import os
import time

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_RETRY_SECONDS = 0.05  # msvcrt has no blocking lock without a 10-second limit: poll instead


def lock_exclusive(fd: int, wait: bool = True) -> bool:
    """Lock the open file ``fd`` exclusively. ``wait``: block until it is free; else return
    False at once when another process holds it. True once the lock is held."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True
    return _lock_windows(fd, wait)


def _lock_windows(fd: int, wait: bool) -> bool:
    import msvcrt

    while True:
        os.lseek(fd, 0, os.SEEK_SET)  # msvcrt locks bytes from the current position
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            if not wait:
                return False
            time.sleep(_RETRY_SECONDS)
