"""The runtime's own untrusted-file rules (it never imports nnspec; ``nnspec.untrusted`` builds
on these, with nnspec's error classes): a model or data file must be a regular file, checked before
it is opened (a FIFO would block onnxruntime forever, ``/dev/zero`` would never end) and again
on the open file; a location that a model names is a short, printable relative path."""

from __future__ import annotations

import os
import stat

from .errors import RuntimeModelError

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe), which would block",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}
# Longer names are refused by the file system anyway (ENAMETOOLONG); refused here first.
MAX_LOCATION = 1024
MAX_NAME = 255


def file_kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def regular_stat(path, what: str, error: type[Exception] = RuntimeModelError) -> os.stat_result:
    """``os.stat(path)`` of a regular file (links followed), else ``error`` saying what it is.
    (``nnspec.untrusted`` calls this with nnspec's own error classes.)"""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the name
        why = getattr(e, "strerror", None) or e
        raise error(f"{path}: cannot read the {what}: {why}") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: is {file_kind(st.st_mode)}; expected a regular {what}")
    return st


def open_regular(path, what: str, error: type[Exception] = RuntimeModelError):
    """``path`` opened for binary reading: a regular file before and after the open, which does
    not wait for a FIFO's writer (``O_NONBLOCK``)."""
    regular_stat(path, what, error)
    # Windows has neither O_NONBLOCK (nor FIFOs to wait for) nor O_NOCTTY, and opens in text
    # mode unless told O_BINARY; looked up at each call so that a test can take them away.
    nonblock = getattr(os, "O_NONBLOCK", 0)
    flags = os.O_RDONLY | nonblock | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise error(f"{path}: cannot read the {what}: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # replaced between the stat and the open
        os.close(fd)
        raise error(f"{path}: is {file_kind(st.st_mode)}; expected a regular {what}")
    if nonblock:
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def location_problem(location: str) -> str | None:
    """Why a model's external-data ``location`` cannot name a file, or None."""
    if any(ord(c) < 32 or ord(c) == 127 for c in location):
        return "holds a control character (a NUL byte?)"
    if len(location.encode("utf-8", "surrogateescape")) > MAX_LOCATION:
        return f"is {len(location):,} characters long (at most {MAX_LOCATION})"
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME for part in location.split("/")):
        return f"has a file name over {MAX_NAME} bytes"
    return None


def sync_directory(directory) -> None:
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
