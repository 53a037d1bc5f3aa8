"""The external-data guard: refuse a model whose tensors name data files it may not read.

One job: check the external-data references of a model (``(tensor name, location, offset,
length)`` tuples, as ``wire.external_refs`` reads them) before onnxruntime opens anything. A
model's tensors may name an external data file (``location``), which onnxruntime opens relative
to the model's directory. A model from elsewhere is untrusted: it could name ``../../etc/passwd``,
an absolute path, or onnxruntime's in-memory marker. Only recent onnxruntime versions refuse
these (microsoft/onnxruntime#26776, late 2025), and older ones, which the runtime supports
(>= 1.17), read the file into the weights. So the runtime refuses any location outside the
model's directory (``..``, a backslash, an absolute or drive path, a symlink that resolves out),
and says which data file is missing or too short for the bytes a tensor needs; every failure is
a ``RuntimeModelError``.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from .errors import RuntimeModelError
from .files import file_kind, location_problem


def check_external(where: str, base: Path | None, refs: list) -> None:
    """Refuse external data outside the model's directory, missing, or too short.

    ``where`` names the model in messages; ``base`` is the model's directory (None for a model
    given as bytes, which may then have no external data); ``refs`` is a list of ``(tensor
    name, location, offset, length)`` tuples (``location`` None or empty: no file named;
    ``length`` None: to the end of the file)."""
    by_file: dict[str, list] = {}
    for name, location, offset, length in refs:
        if not location:
            raise RuntimeModelError(
                f"{where}: tensor {name!r} is marked as external data but names no file"
            )
        by_file.setdefault(location, []).append((name, offset, length))

    def of(location: str) -> str:
        tensors = by_file[location]
        more = f" and {len(tensors) - 1} more" if len(tensors) > 1 else ""
        return f"the external data file {location!r} (of tensor {tensors[0][0]!r}{more})"

    # Every location is checked for where it points before any is opened.
    for location in by_file:
        if base is None:
            raise RuntimeModelError(
                f"{where}: the model keeps weights in {of(location)}; load it from its .onnx "
                "path, with that file beside it, not from bytes"
            )
        problem = location_problem(location)
        if problem:
            raise RuntimeModelError(
                f"{where}: {of(location)[:120]} {problem}; refused: expected a file name "
                "beside the model"
            )
        if "_ORT_MEM_ADDR_" in location:
            raise RuntimeModelError(
                f"{where}: {of(location)} is onnxruntime's marker for data in memory, which "
                "would read from an address the file chooses; refused: expected a file name"
            )
        parts = Path(location).parts
        if Path(location).is_absolute() or re.match(r"[A-Za-z]:|[\\/]", location):
            raise RuntimeModelError(
                f"{where}: {of(location)} is an absolute path; refused: expected a file name "
                "relative to the model's directory"
            )
        if ".." in parts or "\\" in location:
            raise RuntimeModelError(
                f"{where}: {of(location)} points outside the model's directory ('..' or '\\' "
                "in it); refused: expected a file beside the model"
            )
        try:
            real, home = (base / location).resolve(), base.resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop
            raise RuntimeModelError(f"{where}: {of(location)}: {e}") from None
        if not real.is_relative_to(home):
            raise RuntimeModelError(
                f"{where}: {of(location)} is a link to {real}, outside the model's directory; "
                "refused: expected a file beside the model"
            )
    for location, tensors in by_file.items():
        file = base / location
        try:
            st = file.stat()
        except OSError:
            st = None
        # A FIFO would block onnxruntime's read forever, a device never end: regular files only.
        size = st.st_size if st is not None and stat.S_ISREG(st.st_mode) else None
        if size is None:
            state = f"is {file_kind(st.st_mode)}" if st is not None else "is missing"
            raise RuntimeModelError(
                f"{where}: {of(location)} {state} in {base}; a model over 2 GB keeps its "
                "weights in <model>.onnx.data, which must be copied along with the .onnx file"
            )
        for tensor, offset, length in tensors:
            stop = offset + (length or 0)
            if offset < 0 or (length is not None and length < 0) or stop > size:
                raise RuntimeModelError(
                    f"{where}: {of(location)} is truncated or damaged: tensor {tensor!r} needs "
                    f"bytes {offset} to {stop}, the file has {size}; copy it again from where "
                    "the model was written"
                )
