"""Reading files and values that someone else may have written: bounded, finite, never a hang.

Every nnspec reader of a file from elsewhere (data, models, checkpoints, metrics, predict
inputs) goes through these functions, so that one set of rules holds everywhere:

- ``check_regular_file(path, what, error)``: the path must be a regular file (after links); a
  FIFO (which would block), a device (``/dev/zero`` never ends), a directory or a socket is
  refused before anything opens it. Returns its ``os.stat_result``.
- ``open_regular(path, what, error)``: open for reading with ``O_NONBLOCK`` and check the open
  file with ``fstat`` (no race between the check and the open); a binary file object.
- ``read_bytes(path, what, error, limit=...)`` / ``read_text(...)``: the whole file, refused
  before reading when its size is over ``limit`` (and never reading more than ``limit``).
- ``check_allocation(nbytes, what, error)``: refuse an allocation larger than ``memory_limit()``
  (the memory available now) before it is made, saying how much it would take.
- ``npz_entries(source, where, error)`` / ``read_npz(source, where, error, keys=, allowed=)``:
  an NPZ (ZIP) archive from a path or bytes. Every entry is checked by name (``.npy``, no
  duplicates, optionally against ``allowed``) and by declared size (against the memory
  limit, and against ``MAX_RATIO`` times its compressed size: a deflate bomb) before anything
  is decompressed; only the entries asked for are decompressed, never past their declared size.
- ``read_npy(path, where, error)`` and the header checks inside ``read_npz``: the ``.npy``
  header (shape, dtype) is read first; object dtypes (pickle) are refused, and the data it
  claims must be what the file holds and fit in memory, before the array is allocated.
- ``parse_json(text, what, error, ...)``: JSON with a size limit, a nesting limit (no
  ``RecursionError``), and no NaN, Infinity or numbers that overflow to them.
- ``parse_int(text, what, error, lo=, hi=)`` / ``parse_float(text, what, error)`` /
  ``is_plain_number(text)``: numbers in ASCII decimal only (``5_1`` and non-ASCII digits,
  which Python's ``int``/``float`` accept, are refused), ints within bounds, floats finite.
- ``finite_json(value)``: decoded JSON with NaN and inf as None (to write valid JSON).
- ``nested_deeper_than(value, limit)``: whether decoded JSON nests deeper than ``limit``.
- ``check_finite(array, what, error, float32=True)``: no NaN or inf, and (``float32``) no value
  beyond float32's range, which would become inf in the exported model; names the index.

``error`` is the ``NnspecError`` subclass to raise (``DataError`` by default, ``ModelError``
for models, a checkpoint's own error...), and ``what``/``where`` names the file or value in
messages. The runtime (``nnspec_runtime``) never imports nnspec and keeps its own minimal
equivalents (``nnspec_runtime/files.py``, whose regular-file checks these functions use).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnspec_runtime import files

from .errors import DataError, NnspecError

# A data or model file over this is refused before it is read (an explicit limit can be larger).
MAX_FILE_BYTES = 16 * 2**30
# Deflate reaches ~1030:1 on constant bytes; real arrays compress far less (MNIST's pixels
# about 5:1). An entry that claims more than this per compressed byte is a decompression bomb.
MAX_RATIO = 200
# Below this an entry's ratio is not held against it: a small array of zeros is harmless.
RATIO_FLOOR = 2**20
MAX_JSON_DEPTH = 64
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# Python's float() also takes "5_1", "٥", " nan", "infinity": an ASCII decimal number only.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT = re.compile(r"[+-]?[0-9]+")


def check_regular_file(
    path: str | Path, what: str = "file", error: type[NnspecError] = DataError
) -> os.stat_result:
    """``os.stat`` of ``path`` if it is a regular file (links followed); else ``error``."""
    return files.regular_stat(path, what, error)


def open_regular(
    path: str | Path, what: str = "file", error: type[NnspecError] = DataError
) -> BinaryIO:
    """``path`` opened for binary reading, checked to be a regular file before and after the
    open (``O_NONBLOCK``: opening a FIFO does not wait for a writer)."""
    return files.open_regular(path, what, error)


def _size_text(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} bytes"


def read_bytes(
    path: str | Path,
    what: str = "file",
    error: type[NnspecError] = DataError,
    limit: int = MAX_FILE_BYTES,
) -> bytes:
    """The bytes of the regular file ``path``; over ``limit`` is refused before reading."""
    with open_regular(path, what, error) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise error(
                f"{path}: the {what} is {_size_text(size)}; expected at most {_size_text(limit)}"
            )
        try:
            # read(n) allocates n bytes first: ask for the size fstat gave (and one byte
            # more, to see a file that grew), never for the limit.
            data = f.read(size + 1)
        except OSError as e:
            raise error(f"{path}: cannot read the {what}: {e.strerror}") from None
    if len(data) > size:
        raise error(f"{path}: the {what} grew while it was read; expected a finished file")
    return data


def read_text(
    path: str | Path,
    what: str = "file",
    error: type[NnspecError] = DataError,
    limit: int = MAX_FILE_BYTES,
    encoding: str = "utf-8",
) -> str:
    """``read_bytes`` decoded; a byte that is not ``encoding`` is an error that says where."""
    data = read_bytes(path, what, error, limit)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise error(
            f"{path}:{line}: not {encoding.upper()} text (byte 0x{data[e.start]:02x}); "
            f"expected a text {what}"
        ) from None


# -- memory -------------------------------------------------------------------------------


def memory_limit() -> int:
    """Bytes one input may make nnspec allocate: the memory available now (MemAvailable),
    else half the physical memory, else 4 GiB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def check_allocation(
    nbytes: int, what: str, error: type[NnspecError] = DataError, limit: int | None = None
) -> None:
    """Refuse, before allocating, ``nbytes`` over ``limit`` (default ``memory_limit()``)."""
    limit = memory_limit() if limit is None else limit
    if nbytes > limit:
        raise error(
            f"{what} would take {_size_text(nbytes)} of memory; this machine has "
            f"{_size_text(limit)} available; refused before allocating"
        )


# -- .npy and .npz --------------------------------------------------------------------------


@dataclass(frozen=True)
class NpzEntry:
    """One array of an NPZ archive, as its ZIP directory declares it (nothing decompressed)."""

    key: str  # the array's name (the entry's name without .npy)
    name: str  # the ZIP entry's name
    size: int  # declared uncompressed bytes (zipfile never decompresses past it)
    compressed: int  # bytes in the archive


def _npy_header(f, size: int, where: str, error) -> tuple[np.dtype, tuple, bool, int]:
    """(dtype, shape, fortran_order, data bytes) of the ``.npy`` stream ``f`` of ``size``
    bytes, checked: no objects, and a data size that is exactly what the stream holds."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy format version {version}")
    except (zipfile.BadZipFile, zlib.error) as e:
        raise error(f"{where}: damaged in the archive: {e}") from None
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise error(f"{where}: not a readable .npy array: {e}") from None
    if dtype.hasobject:
        raise error(
            f"{where}: cannot load without pickle: it is an object array (dtype object), and "
            "unpickling a data file could run code, so nnspec never does; save it as numbers "
            "(e.g. np.asarray(a, dtype=np.float64)) or strings"
        )
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise error(f"{where}: not a readable .npy array: shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    header = f.tell()
    if nbytes != size - header:
        raise error(
            f"{where}: its header claims {dtype} of shape {shape} ({_size_text(nbytes)}), but "
            f"it holds {_size_text(max(size - header, 0))} of data: truncated or damaged"
        )
    check_allocation(nbytes, f"{where}: {dtype} of shape {shape}", error)
    return dtype, shape, fortran, nbytes


def _read_npy_data(f, dtype, shape, fortran: bool, nbytes: int, where: str, error) -> np.ndarray:
    out = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    view = memoryview(out.reshape(-1, order="A").view(np.uint8)) if nbytes else memoryview(b"")
    got = 0
    try:
        while got < nbytes:
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
    except (zipfile.BadZipFile, zlib.error) as e:
        raise error(f"{where}: damaged in the archive: {e}") from None
    except (OSError, EOFError) as e:
        raise error(f"{where}: damaged: {e}") from None
    if got != nbytes:
        raise error(f"{where}: truncated: {got} of its {nbytes} bytes of data")
    return out


def read_npy(path: str | Path, where: str | None = None, error=DataError) -> np.ndarray:
    """A ``.npy`` file: header checked (no objects, the size it claims is the size it has, and
    fits in memory) before the array is allocated."""
    where = where or str(path)
    with open_regular(path, "data file", error) as f:
        size = os.fstat(f.fileno()).st_size
        dtype, shape, fortran, nbytes = _npy_header(f, size, where, error)
        return _read_npy_data(f, dtype, shape, fortran, nbytes, where, error)


def _zip(source: str | Path | bytes, where: str, error) -> zipfile.ZipFile:
    try:
        if isinstance(source, bytes | bytearray):
            return zipfile.ZipFile(io.BytesIO(source))
        return zipfile.ZipFile(open_regular(source, "data file", error))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise error(f"{where}: not a readable .npz archive: {e}") from None


def _entries(archive: zipfile.ZipFile, where: str, error, allowed) -> list[NpzEntry]:
    entries, seen, total = [], set(), 0
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy") or name.startswith("/") or ".." in name.split("/"):
            raise error(f"{where}: holds {name!r}, not a .npy array; expected only .npy entries")
        key = name[: -len(".npy")]
        if allowed is not None and not allowed(key):
            raise error(f"{where}: holds an unexpected array {key!r}")
        if key in seen:
            raise error(f"{where}: holds the array {key!r} twice")
        seen.add(key)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise error(
                f"{where}: array {key!r} is compressed with method {info.compress_type}; "
                "expected an archive written by np.savez or np.savez_compressed"
            )
        size, packed = info.file_size, info.compress_size
        if size > RATIO_FLOOR and size > MAX_RATIO * max(packed, 1):
            raise error(
                f"{where}: array {key!r} claims {_size_text(size)} from {_size_text(packed)} "
                f"compressed ({size // max(packed, 1):,}:1, over the {MAX_RATIO}:1 that real "
                "data reach): a decompression bomb; refused before decompressing. Save real "
                "data with np.savez (uncompressed) if it is this regular"
            )
        total += size
        entries.append(NpzEntry(key, name, size, packed))
    check_allocation(total, f"{where}: its arrays", error)
    return entries


def npz_entries(source: str | Path | bytes, where: str | None = None, error=DataError):
    """The entries of an NPZ archive, checked by name and declared size (see ``read_npz``),
    without decompressing any."""
    where = where or str(source if not isinstance(source, bytes | bytearray) else "<npz>")
    with _zip(source, where, error) as archive:
        return _entries(archive, where, error, None)


def read_npz(
    source: str | Path | bytes,
    where: str | None = None,
    error=DataError,
    *,
    keys=None,
    allowed=None,
    header_only=(),
) -> dict[str, np.ndarray | tuple]:
    """The arrays of an NPZ archive (a path or its bytes) by name.

    ``keys``: only these are decompressed (all when None; a missing one is an error naming
    what the archive holds). ``allowed(key)``: a predicate every entry's name must pass.
    ``header_only``: keys whose ``(dtype, shape)`` is returned instead of the array (read
    from the entry's header, nothing else decompressed). Every entry is checked by name and
    declared size before any is decompressed; each array's header before it is allocated.
    """
    where = where or str(source if not isinstance(source, bytes | bytearray) else "<npz>")
    with _zip(source, where, error) as archive:
        entries = {e.key: e for e in _entries(archive, where, error, allowed)}
        wanted = list(entries) if keys is None else list(keys)
        for key in wanted:
            if key not in entries:
                raise error(
                    f"{where}: no array '{key}'; the archive holds: {', '.join(entries) or 'none'}"
                )
        out = {}
        for key in wanted:
            entry, at = entries[key], f"{where}: array '{key}'"
            try:
                with archive.open(entry.name) as f:
                    dtype, shape, fortran, nbytes = _npy_header(f, entry.size, at, error)
                    if key in header_only:
                        out[key] = (dtype, shape)
                        continue
                    out[key] = _read_npy_data(f, dtype, shape, fortran, nbytes, at, error)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
                raise error(f"{at}: damaged in the archive: {e}") from None
        return out


# -- values in metadata and text -------------------------------------------------------------


def finite_json(value):
    """``value`` (decoded JSON) with NaN and inf replaced by None: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value


def nested_deeper_than(value, limit: int) -> bool:
    """True when the JSON-like ``value`` nests deeper than ``limit`` (iterative: no
    recursion)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            if d > limit:
                return True
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


def parse_json(
    text: str | bytes,
    what: str,
    error: type[NnspecError] = DataError,
    *,
    max_bytes: int = 2**24,
    max_depth: int = MAX_JSON_DEPTH,
):
    """``text`` as JSON: at most ``max_bytes``, nested at most ``max_depth`` deep; NaN,
    Infinity and numbers too large for a float are refused."""
    if len(text) > max_bytes:
        raise error(f"{what}: {_size_text(len(text))} of JSON; expected at most {max_bytes:,}")

    def constant(name: str):
        raise ValueError(f"{name} is not a finite number")

    def number(s: str) -> float:
        value = float(s)
        if not math.isfinite(value):
            raise ValueError(f"{s} is beyond the range of a float")
        return value

    try:
        value = json.loads(text, parse_constant=constant, parse_float=number)
    except RecursionError:
        raise error(f"{what}: JSON nested too deep; expected at most {max_depth} levels") from None
    except json.JSONDecodeError as e:
        raise error(f"{what}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise error(f"{what}: not usable JSON ({e})") from None
    if nested_deeper_than(value, max_depth):
        raise error(f"{what}: JSON nested over {max_depth} levels deep; expected at most that")
    return value


def is_plain_number(text: str) -> bool:
    """True for an ASCII decimal number (``-1.5e3``, spaces around allowed)."""
    return _NUMBER.fullmatch(text.strip()) is not None


def parse_float(text: str, what: str, error: type[NnspecError] = DataError) -> float:
    """A finite float written in ASCII decimal, or ``error`` saying what was found."""
    if not is_plain_number(text):
        raise error(f"{what}: expected a number, got {text!r:.60}")
    value = float(text)
    if not math.isfinite(value):
        raise error(f"{what}: expected a finite number, got {text.strip():.60}")
    return value


def parse_int(
    value: str | int,
    what: str,
    error: type[NnspecError] = DataError,
    lo: int | None = None,
    hi: int | None = None,
) -> int:
    """An integer (ASCII decimal text, or a JSON int; not a bool) within ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise error(f"{what}: expected an integer, got {value!r:.60}")
    if isinstance(value, str):
        if len(value) > 40 or not _INT.fullmatch(value.strip()):
            raise error(f"{what}: expected an integer, got {value!r:.60}")
        value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = (
            f"from {lo} to {hi}"
            if lo is not None and hi is not None
            else (f"at least {lo}" if lo is not None else f"at most {hi}")
        )
        raise error(f"{what}: expected an integer {bounds}, got {value:.4g}")
    return value


def check_finite(
    array, what: str, error: type[NnspecError] = DataError, float32: bool = True
) -> None:
    """Refuse NaN and inf in ``array`` (real numbers) and, with ``float32``, values beyond
    float32's range (1e39 is finite in float64 and inf in the exported model)."""
    a = np.asarray(array)
    if a.dtype.kind not in "fc" or a.size == 0:
        return
    bad = ~np.isfinite(a)
    why = "a NaN or inf"
    if not bad.any() and float32:
        bad = np.abs(a) > _FLOAT32_MAX
        why = f"a value beyond float32's range (±{_FLOAT32_MAX:.4g})"
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        shown = index[0] if len(index) == 1 else index
        raise error(f"{what} has {why} at index {shown}; expected finite numbers")
