"""Valid base specs and the located-error case record that the malformed-spec tests (and each
layer kind's own error cases) are written with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conftest import kinds_in

# A valid spec; the cases below change, drop or append lines. Columns of the two layer lines:
#   "  - {kind: dense, units: 10, activation: relu}"
#    col 5 '{', 6 'kind', 12 its value, 19 'units', 26 its value, 30 'activation', 42 its value.
BASE = (
    "spec_version: 1",  # 1
    "name: iris-mlp",  # 2
    "task: classification",  # 3
    "data: {builtin: iris}",  # 4
    "layers:",  # 5
    "  - {kind: dense, units: 10, activation: relu}",  # 6
    "  - {kind: dense, units: 3, activation: softmax}",  # 7
    "loss: cross_entropy",  # 8
)

# The same shape for a regression dataset.
REGRESSION = (
    "spec_version: 1",  # 1
    "name: mcycle-mlp",  # 2
    "task: regression",  # 3
    "data: {builtin: mcycle}",  # 4
    "layers:",  # 5
    "  - {kind: dense, units: 10, activation: logistic}",  # 6
    "  - {kind: dense, units: 1, activation: identity}",  # 7
    "loss: mse",  # 8
)

# A valid ConvNet on the built-in 8×8 digits, which a spec with image layers and no `input`
# gets as (1, 8, 8) images: conv 4×6×6, pool 4×3×3, flatten 36, dense 10. Columns of line 6:
#   "  - {kind: conv2d, filters: 4, kernel_size: 3, activation: relu}"
#    col 5 '{', 12 the kind, 20 'filters', 29 its value, 32 'kernel_size', 45 its value,
#    48 'activation' (or a key put in its place), 60 its value.
CONV = (
    "spec_version: 1",  # 1
    "name: digits-cnn",  # 2
    "task: classification",  # 3
    "data: {builtin: digits}",  # 4
    "layers:",  # 5
    "  - {kind: conv2d, filters: 4, kernel_size: 3, activation: relu}",  # 6
    "  - {kind: maxpool2d, kernel_size: 2}",  # 7
    "  - {kind: flatten}",  # 8
    "  - {kind: dense, units: 10, activation: softmax}",  # 9
    "loss: cross_entropy",  # 10
)


def spec(
    edits: dict[int, str] | None = None,
    drop: tuple[int, ...] = (),
    append: tuple[str, ...] = (),
    base: tuple[str, ...] = BASE,
) -> str:
    """``base`` with lines replaced (by 1-based number), dropped, and appended (after the last
    line: from line 9 of BASE, line 11 of CONV)."""
    edits = edits or {}
    lines = [edits.get(n, text) for n, text in enumerate(base, start=1) if n not in drop]
    return "\n".join([*lines, *append]) + "\n"


def conv(
    edits: dict[int, str] | None = None, drop: tuple[int, ...] = (), append: tuple[str, ...] = ()
) -> str:
    """``spec`` on the ConvNet ``CONV``."""
    return spec(edits, drop, append, base=CONV)


@dataclass(frozen=True)
class Case:
    text: str | bytes
    line: int
    col: int
    path: str | None  # the YAML path printed after the location, if any
    message: str  # a substring of the message
    anchored: bool = False  # the message must follow the path directly, not just occur
    xfail: str | None = None  # a known nnspec bug makes this case fail: the reason
    # Layer kinds the case adds to its base spec's (those it keeps are found in its text): in a
    # build without one of them the case is skipped, not failed.
    kinds: tuple[str, ...] = ()


def write_case(directory: Path, case: Case) -> Path:
    path = directory / "spec.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")
    return path


def assert_located(stderr: str, path: Path, case: Case) -> None:
    """One stderr line is ``FILE:LINE:COL: [PATH: ]...MESSAGE...`` (``PATH: MESSAGE...`` when
    the case is anchored)."""
    assert "Traceback" not in stderr
    prefix = f"{path}:{case.line}:{case.col}: " + (f"{case.path}: " if case.path else "")
    if case.anchored:
        found = any(line.startswith(prefix + case.message) for line in stderr.splitlines())
    else:
        found = any(
            line.startswith(prefix) and case.message in line for line in stderr.splitlines()
        )
    how = "followed by" if case.anchored else "containing"
    assert found, f"expected a line starting {prefix!r} {how} {case.message!r}; stderr:\n{stderr}"


def kinds_needed(case: Case) -> tuple[str, ...]:
    """The layer kinds ``case`` needs to be about what it says: those of the base specs that
    its text still names, and those it declares. (A misspelt kind in the text is the case's
    subject, not a need.)"""
    text = case.text if isinstance(case.text, str) else case.text.decode("utf-8", "replace")
    base = kinds_in("\n".join(BASE + REGRESSION + CONV))
    return tuple(k for k in kinds_in(text) if k in base) + case.kinds
