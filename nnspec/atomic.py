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


def make_directory(path: str | Path, what: str) -> Path:
    """``path`` as a directory (created with its parents if missing), or an error that says
    why it cannot be one; ``what`` names it in the message ("the sweep's results (-o)")."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file; expected a directory for {what}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot create the directory for {what}: {e.strerror}") from None
    return path


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
            # mkstemp makes the file private (0600); models and predictions are meant to be
            # shared like any other file written here.
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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
