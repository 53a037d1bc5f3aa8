"""Atomic file writes: a reader sees the old file, the new file, or none; never half of one.

Only regular files are replaced. A target that is not one (``/dev/null``, ``/dev/full``, a
FIFO, ``/dev/stdout`` and whatever else is reached through ``/proc``) is written through, as
a stream, or refused (a block device, a socket, a directory); ``-`` is standard output for
text outputs (CSV, JSON). A symlink to a regular file keeps being a link: its target is
replaced. An output that is one of the command's inputs (the same inode) is refused before
any work (``check_not_input``), and an export holds a lock beside its target
(``export_lock``) so that two writers of one model cannot interleave their files.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

from nnspec_runtime.files import sync_directory

from .errors import NnspecError
from .file_lock import lock_exclusive


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


STDOUT = "-"
_STREAMS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device"}
_REFUSED = {stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


def _special(path: Path) -> os.stat_result | None:
    """The stat of a target that is written through rather than replaced, else None: an
    existing file that is not a regular one (a device, a FIFO), or anything reached through
    /proc (``/dev/stdout`` links to ``/proc/self/fd/1``, ``/dev/fd/N`` lives there), which may
    be a regular file that the shell opened and must not be renamed over."""
    absolute = os.path.abspath(path)
    proc = absolute.startswith("/proc/") or os.path.realpath(os.path.dirname(absolute)).startswith(
        "/proc/"
    )
    if not proc and os.path.islink(absolute):
        target = os.path.join(os.path.dirname(absolute), os.readlink(absolute))
        proc = os.path.abspath(target).startswith("/proc/")
    try:
        st = os.stat(path)
    except (OSError, ValueError) as e:
        if proc:
            raise OutputError(
                f"{path}: cannot write: {getattr(e, 'strerror', None) or e}"
            ) from None
        return None
    return st if proc or not stat.S_ISREG(st.st_mode) else None


def is_stream(path: str | Path) -> bool:
    """True when ``path`` is written through (standard output, a device, a FIFO), not replaced."""
    return str(path) == STDOUT or _special(Path(path)) is not None


def check_writable(path: str | Path, stdout: bool = False) -> None:
    """Fail before long work, not after it, when ``path`` cannot be written. ``stdout``: the
    output is text, and ``-`` means standard output."""
    if str(path) == STDOUT:
        if not stdout:
            raise OutputError(
                "-: standard output takes CSV and JSON outputs only; expected a file path"
            )
        return
    path = Path(path)
    st = _special(path)
    if st is not None:
        kind = stat.S_IFMT(st.st_mode)
        if kind in _REFUSED or kind not in _STREAMS and not stat.S_ISREG(st.st_mode):
            what = _REFUSED.get(kind, "not a file")
            raise OutputError(f"{path}: is {what}; expected a file path to write")
        if not os.access(path, os.W_OK):
            raise OutputError(f"{path}: is not writable")
        return
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


def _stream(path: Path, data: bytes) -> None:
    """Write ``data`` through to a device, a FIFO or ``/dev/stdout``, never replacing it."""
    try:
        # O_NONBLOCK: a FIFO without a reader is an error (ENXIO), not a wait forever (Windows
        # has no O_NONBLOCK, no O_NOCTTY, and needs O_BINARY).
        nonblock = getattr(os, "O_NONBLOCK", 0)
        flags = os.O_WRONLY | os.O_APPEND | nonblock
        fd = os.open(path, flags | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        why = "a FIFO with no reader" if e.errno == 6 else e.strerror
        raise OutputError(f"{path}: cannot write: {why}") from None
    try:
        if nonblock:
            os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror}") from None
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes, stdout: bool = False) -> None:
    """Write to a temporary file in the same directory, fsync it, then rename over ``path``;
    streams and ``-`` (with ``stdout``) are written through (see the module docstring)."""
    check_writable(path, stdout)
    if str(path) == STDOUT:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(path)
    if _special(path) is not None:
        _stream(path, data)
        return
    if path.is_symlink():  # replace what the link points to, not the link
        path = Path(os.path.realpath(path))
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


def write_text(path: str | Path, text: str) -> None:
    """``write_bytes`` of UTF-8 text; ``-`` is standard output."""
    write_bytes(path, text.encode("utf-8"), stdout=True)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_not_input(outputs: dict[str, str | Path | None], inputs: dict[str, str | Path | None]):
    """Refuse an output that is one of the inputs (the same file, by inode, whatever the name
    says), or that two outputs share, before any work: ``nnspec train s.yaml -o s.yaml`` would
    write ONNX bytes over the spec."""
    stats = {}
    for what, path in inputs.items():
        if path is not None and str(path) != STDOUT:
            try:
                stats[what] = (path, os.stat(path))
            except (OSError, ValueError):
                pass
    seen = {}
    for what, path in outputs.items():
        if path is None or str(path) == STDOUT:
            continue
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            for other, (other_path, other_st) in stats.items():
                if _same_file(st, other_st):
                    same = "" if str(other_path) == str(path) else f" ({other_path})"
                    raise OutputError(
                        f"{path}: the {what} would overwrite the {other}{same}, which this "
                        f"command reads; expected another path for the {what}"
                    )
        key = os.path.abspath(path)
        if key in seen:
            raise OutputError(f"{path}: given as both the {seen[key]} and the {what}")
        seen[key] = what


@contextlib.contextmanager
def export_lock(path: str | Path):
    """Hold an exclusive lock (``file_lock``) on ``.<name>.lock`` beside ``path`` while a model and
    its data file are written, so that two exports to one path run one after the other
    instead of interleaving their renames (a model with one run's metadata and the other's
    weights). The lock goes with the process; the file is removed on release (a waiter that
    then holds a removed file's lock sees so, and locks the new one)."""
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the lock file {lock}: {e.strerror}") from None
        lock_exclusive(fd)
        try:
            held = _same_file(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            held = False
        if held:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            lock.unlink(missing_ok=True)
        except PermissionError:  # Windows removes no open file: the next export reuses it
            pass
        os.close(fd)
