"""Export targets: which opset and IR version a model is written with, and whether the
installed onnx and onnxruntime can handle them.

``nnspec compile|train --opset N`` overrides ``export.opset``; ``--target-onnxruntime 1.17``
picks the highest opset that release runs (and the IR version that opset needs, the lowest that
loads it everywhere: never above what the release runs). Before anything is trained, a spec
whose opset the installed onnx cannot write or the installed onnxruntime cannot run (for the
parity check) is refused, naming the versions it needs. No onnx import: ``validate`` starts
fast, so installed versions come from the package metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from nnspec_runtime.versions import (
    ONNXRUNTIME_SUPPORT,
    needed_onnxruntime,
    release,
    supported_by,
)

from ..errors import SpecError
from .models import Spec

# The opsets a spec may name (ExportSpec.opset's bounds).
MIN_OPSET, MAX_OPSET = 13, 22

# The lowest IR version each opset needs: onnx.helper.find_min_ir_version_for (onnx 1.23),
# written out so that this module does not import onnx.
IR_FOR_OPSET = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10}

# The newest default-domain opset and IR version that each onnx release writes and checks
# (onnx.defs.onnx_opset_version() and onnx.IR_VERSION). Source: measured in each release's
# wheel from the registry (Python 3.11, 2026-12-06); the same as onnx's docs/Versioning.md.
ONNX_SUPPORT: dict[tuple[int, int], tuple[int, int]] = {
    (1, 14): (19, 9),
    (1, 15): (20, 9),
    (1, 16): (21, 10),
    (1, 17): (22, 10),
    (1, 18): (23, 11),
    (1, 19): (24, 12),
    (1, 20): (25, 13),
    (1, 21): (26, 13),
    (1, 22): (27, 13),
    (1, 23): (28, 14),
}


@dataclass(frozen=True)
class ExportTarget:
    """The opset and IR version a model is written with; ``onnxruntime``: the oldest release
    that runs it."""

    opset: int
    ir_version: int
    onnxruntime: str | None


def target(opset: int) -> ExportTarget:
    ir = IR_FOR_OPSET[opset]
    return ExportTarget(opset, ir, needed_onnxruntime(opset, ir))


def opset_for_onnxruntime(version: str) -> int:
    """The highest opset nnspec writes that onnxruntime ``version`` runs (ValueError if the
    version is malformed or older than every release the table knows)."""
    support = supported_by(version)
    if support is None:
        oldest = ".".join(map(str, min(ONNXRUNTIME_SUPPORT)))
        raise ValueError(
            f"onnxruntime {version} is older than any release nnspec knows how to target; "
            f"expected {oldest} or newer"
        )
    max_opset, max_ir = support
    for opset in range(min(max_opset, MAX_OPSET), MIN_OPSET - 1, -1):
        if IR_FOR_OPSET[opset] <= max_ir:
            return opset
    raise ValueError(f"onnxruntime {version} runs no opset from {MIN_OPSET} to {MAX_OPSET}")


def needed_onnx(opset: int, ir_version: int) -> str | None:
    """The oldest onnx release (such as "1.17") that writes this opset and IR version."""
    for (major, minor), (max_opset, max_ir) in sorted(ONNX_SUPPORT.items()):
        if opset <= max_opset and ir_version <= max_ir:
            return f"{major}.{minor}"
    return None


def _installed(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _supports(table, version: str | None, opset: int, ir: int) -> bool:
    if version is None:
        return True  # not installed: the import says so where it is needed
    try:
        key = release(version)
    except ValueError:
        return True
    newest = max(table)
    max_opset, max_ir = table.get(key, table[newest] if key > newest else (0, 0))
    return opset <= max_opset and ir <= max_ir


def check_installed(
    spec: Spec, opset: int | None = None, onnx_version=None, onnxruntime_version=None
) -> None:
    """Raise a located ``SpecError`` when the installed onnx cannot write ``opset`` (default:
    the spec's ``export.opset``) or the installed onnxruntime cannot run it.

    ``onnx_version``/``onnxruntime_version`` stand in for the installed ones (tests)."""
    opset = spec.export.opset if opset is None else opset
    ir = IR_FOR_OPSET[opset]
    onnx_v = onnx_version or _installed("onnx")
    ort_v = onnxruntime_version or _installed("onnxruntime", "onnxruntime-gpu")
    short = []
    if not _supports(ONNX_SUPPORT, onnx_v, opset, ir):
        short.append(f"onnx >= {needed_onnx(opset, ir)} (installed: {onnx_v})")
    if not _supports(ONNXRUNTIME_SUPPORT, ort_v, opset, ir):
        short.append(
            f"onnxruntime >= {needed_onnxruntime(opset, ir)} (installed: {ort_v}) for the "
            "parity check"
        )
    if not short:
        return
    runs_here = [
        o
        for o in range(MIN_OPSET, MAX_OPSET + 1)
        if _supports(ONNX_SUPPORT, onnx_v, o, IR_FOR_OPSET[o])
        and _supports(ONNXRUNTIME_SUPPORT, ort_v, o, IR_FOR_OPSET[o])
    ]
    lower = f"; or export.opset {max(runs_here)} (or --opset {max(runs_here)})" if runs_here else ""
    raise SpecError(
        [
            spec.source.issue(
                ("export", "opset"),
                f"opset {opset} (IR version {ir}) needs {' and '.join(short)}; expected "
                f"pip install -U onnx onnxruntime{lower}, which runs here",
            )
        ]
    )
