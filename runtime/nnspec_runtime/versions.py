"""Which onnxruntime runs a model: its IR version and opset, and what each release supports.

A model whose IR version or default-domain opset is newer than the installed onnxruntime knows
fails inside onnxruntime with "Unsupported model IR version" or an opset error that reads as
if the model were broken. ``model_versions`` reads both numbers from the serialized model with
the runtime's own protobuf wire reader (``wire.py``; no onnx needed), and
``check_onnxruntime`` refuses the model before onnxruntime opens it, naming the release it
needs. nnspec's ``--target-onnxruntime`` reads the same table to pick what to write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import RuntimeModelError
from .wire import Corrupt, WireModel, read_wire

# The newest IR version and default-domain ("ai.onnx") opset that each onnxruntime release
# loads on the CPU provider. Source: measured, not copied: a one-node (Relu) model of every
# opset from 13 to 24 at every IR version from 7 to 13 was opened in each release's CPU wheel
# from the registry (Python 3.11, 2026-12-06; the latest patch of each minor release), by
# bench/onnxruntime_support.py. It agrees with onnxruntime's published compatibility table
# ("ONNX Runtime compatibility", docs/reference/compatibility in the onnxruntime docs) where
# that table has the release, except that 1.22 refuses IR 11. Releases after the last row are
# taken to run at least what it runs.
ONNXRUNTIME_SUPPORT: dict[tuple[int, int], tuple[int, int]] = {
    # (major, minor): (newest opset, newest IR version)
    (1, 15): (19, 9),
    (1, 16): (19, 9),
    (1, 17): (20, 9),
    (1, 18): (21, 10),
    (1, 19): (21, 10),
    (1, 20): (21, 10),
    (1, 21): (22, 10),
    (1, 22): (22, 10),
    (1, 23): (23, 11),
    (1, 24): (24, 13),
    (1, 25): (24, 13),
    (1, 26): (24, 13),
    (1, 27): (24, 13),
    (1, 28): (24, 13),
    (1, 29): (24, 13),
    (1, 30): (24, 13),
    (1, 31): (24, 13),
    (1, 32): (24, 13),
}


@dataclass(frozen=True)
class ModelVersions:
    """``ir_version`` and the ``opsets`` imported ({domain: version}; "" is ai.onnx)."""

    ir_version: int
    opsets: dict[str, int]

    @property
    def opset(self) -> int | None:
        """The default domain's opset (None when the model imports none)."""
        return self.opsets.get("", self.opsets.get("ai.onnx"))


def model_versions(buf) -> ModelVersions:
    """IR version and opset imports of the serialized model ``buf`` (bytes, an mmap, or the
    ``WireModel`` already read from it); ``Corrupt`` if it is not an ONNX model's wire format."""
    found = buf if isinstance(buf, WireModel) else read_wire(buf)
    return ModelVersions(found.ir_version, dict(found.opsets))


def release(version: str) -> tuple[int, int]:
    """(major, minor) of a version string such as "1.20.1" or "1.22.0.dev20250101"."""
    m = re.match(r"\s*(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"expected an onnxruntime version such as 1.20 or 1.20.1, got {version!r}")
    return int(m.group(1)), int(m.group(2))


def supported_by(version: str) -> tuple[int, int] | None:
    """(newest opset, newest IR version) that onnxruntime ``version`` loads; None for a
    release older than the table knows. A release newer than the table runs what its last
    row runs (at least)."""
    key = release(version)
    if key in ONNXRUNTIME_SUPPORT:
        return ONNXRUNTIME_SUPPORT[key]
    newest = max(ONNXRUNTIME_SUPPORT)
    if key > newest:
        return ONNXRUNTIME_SUPPORT[newest]
    return None


def needed_onnxruntime(opset: int, ir_version: int) -> str | None:
    """The oldest onnxruntime release (such as "1.21") that loads a model of this default
    opset and IR version; None when no release in the table does."""
    for (major, minor), (max_opset, max_ir) in sorted(ONNXRUNTIME_SUPPORT.items()):
        if opset <= max_opset and ir_version <= max_ir:
            return f"{major}.{minor}"
    return None


def check_onnxruntime(where: str, versions: ModelVersions, installed: str) -> None:
    """Raise ``RuntimeModelError`` when onnxruntime ``installed`` is too old for the model."""
    support = supported_by(installed)
    opset = versions.opset
    if support is None or opset is None:
        return  # a release older than the table, or a model without ai.onnx: onnxruntime says
    max_opset, max_ir = support
    if opset <= max_opset and versions.ir_version <= max_ir:
        return
    need = needed_onnxruntime(opset, versions.ir_version)
    raise RuntimeModelError(
        f"{where}: the model needs a newer onnxruntime: it has IR version "
        f"{versions.ir_version} and opset {opset}, and the installed onnxruntime {installed} "
        f"runs at most IR {max_ir} and opset {max_opset}; expected onnxruntime "
        + (f">= {need}" if need else "newer than any release known here")
        + " (or a model exported for this one: nnspec compile|train --target-onnxruntime "
        f"{'.'.join(map(str, release(installed)))})"
    )


__all__ = [
    "ONNXRUNTIME_SUPPORT",
    "Corrupt",
    "ModelVersions",
    "check_onnxruntime",
    "model_versions",
    "needed_onnxruntime",
    "release",
    "supported_by",
]
