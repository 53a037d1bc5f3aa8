"""IDX files, the format of MNIST: ``data: {idx: {images: path, labels: path}}``.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values, big-endian, row-major. The files come
from others, so every size is checked against the header before anything is allocated: a
header that promises more bytes than the file holds is an error, not a huge allocation.
Gzipped files (``.gz``, or the gzip magic whatever the name) are decompressed with a bound
taken from the header. NumPy alone reads them.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from .. import untrusted
from ..errors import DataError

# type code -> big-endian dtype (the IDX definition: http://yann.lecun.com/exdb/mnist/)
_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Refused before reading: full MNIST's training images are 47 MB; 4 GB of values is not data
# anyone trains on with this tool, and a forged header must not make us try.
MAX_IDX_BYTES = 4 * 2**30


def _open(path: Path) -> bytes:
    """The file's bytes, decompressed when gzipped; a DataError when it is not a readable
    regular file."""
    if not path.exists():
        raise DataError(f"{path}: data file not found")
    # Regular files only (a FIFO would block), refused over the cap before reading.
    raw = untrusted.read_bytes(path, "IDX file", DataError, limit=MAX_IDX_BYTES)
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        # Decompressed in steps, with a cap: a small gzip can expand to gigabytes.
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(raw, MAX_IDX_BYTES + 1)
        if len(out) > MAX_IDX_BYTES:
            raise DataError(f"{path}: decompresses to over {MAX_IDX_BYTES:,} bytes")
        if not d.eof:
            raise DataError(f"{path}: truncated gzip data (the compressed stream ends early)")
        return out
    except (zlib.error, gzip.BadGzipFile, EOFError) as e:
        raise DataError(f"{path}: damaged gzip data: {e}") from None


def read_idx(path: Path, what: str) -> np.ndarray:
    """The array in the IDX file at ``path`` (``what``: "images" or "labels", for messages),
    in native byte order."""
    data = _open(path)
    if len(data) < 4:
        raise DataError(
            f"{path}: {len(data)} bytes; expected an IDX file (a 4-byte magic number, then "
            "the dimensions)"
        )
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in _TYPES or ndim == 0:
        raise DataError(
            f"{path}: not an IDX file: magic number 0x{data[:4].hex()}; expected 0x0000 then a "
            f"type code ({', '.join(f'0x{c:02x}' for c in _TYPES)}) and the number of "
            f"dimensions (MNIST {what}: 0x0000080{3 if what == 'images' else 1})"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: the header of {ndim} dimensions is cut off ({len(data)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = _TYPES[code]
    need = math.prod(dims) * dtype.itemsize
    have = len(data) - header
    if need != have:
        shape = "×".join(map(str, dims))
        raise DataError(
            f"{path}: the header says {shape} values of {dtype.name} ({need:,} bytes), but the "
            f"file holds {have:,} bytes after the header; "
            + ("truncated?" if have < need else "expected nothing after the values")
        )
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (samples, 1, height, width) float64, labels (samples,)) from two IDX files."""
    x = read_idx(images, "images")
    y = read_idx(labels, "labels")
    if x.ndim not in (3, 4):
        raise DataError(
            f"{images}: expected images of shape (samples, height, width) or (samples, "
            f"channels, height, width), got {x.ndim} dimensions {x.shape}"
        )
    if y.ndim != 1:
        raise DataError(f"{labels}: expected labels of shape (samples,), got {y.shape}")
    if len(x) != len(y):
        raise DataError(
            f"{labels}: {len(y)} labels, but {images} holds {len(x)} images; expected one "
            "label per image"
        )
    if len(x) == 0:
        raise DataError(f"{images}: holds no images")
    x = x.reshape(len(x), 1, *x.shape[1:]) if x.ndim == 3 else x
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        i = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
        raise DataError(f"{images}: image {i} holds a NaN or inf; expected finite numbers")
    return x, y
