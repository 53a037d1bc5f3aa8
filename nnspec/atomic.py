"""Atomic file writes: a reader sees the old file, the new file, or none; never half of one."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import NnspecError


class OutputError(NnspecError):
    """An output path that cannot be written."""


def _mode_for(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets what open() would give it."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _set_mode(tmp: str, mode: int) -> None:
    """chmod by path: os.fchmod does not exist on Windows before Python 3.13 (where os.chmod
    only sets or clears the read-only flag, which is all that a mode means there)."""
    try:
        os.chmod(tmp, mode)
    except NotImplementedError:  # pragma: no cover - a platform without any chmod
        pass


def check_writable(path: str | Path) -> None:
    """Fail before long work, not after it, when ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; expected a file path to write")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the directory {parent} is not writable")


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync it, then rename over ``path``."""
    path = Path(path)
    check_writable(path)
    mode = _mode_for(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); models and predictions are meant to be shared
        # like any other file written here. Set once the bytes are in, so that a read-only
        # mode (umask 0o222, or an existing read-only file) never stands in the way of writing.
        _set_mode(tmp, mode)
        os.replace(tmp, path)
        sync_directory(path.parent)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write: {e.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sync_directory(directory: Path) -> None:
    """fsync a directory, so that a rename in it survives a power loss (not only a kill)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not every platform can open a directory; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
