"""Errors that nnspec reports to users: located, one line each, never a traceback.

Every error a user can cause by what they wrote (a spec, a data file, a model path) is an
``NnspecError``. The CLI prints ``str(error)`` and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

YamlPath = tuple[str | int, ...]


def format_path(path: YamlPath) -> str:
    """``("layers", 1, "units")`` -> ``"layers[1].units"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class NnspecError(Exception):
    """An error caused by user input; the CLI prints it and exits with code 2."""

    exit_code = 2


@dataclass(frozen=True)
class Issue:
    """One problem in a spec: where it is and what was expected and received."""

    message: str
    path: YamlPath = ()
    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based

    def __str__(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}:{self.col}"
        path = format_path(self.path)
        if not path:
            return f"{where}: {self.message}"
        # A message that opens with the layer's kind reads "layers[4] (maxpool2d): ...".
        sep = " " if self.message.startswith("(") else ": "
        return f"{where}: {path}{sep}{self.message}"


class SpecError(NnspecError):
    """One or more located problems in a spec file."""

    def __init__(self, issues: Sequence[Issue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class DataError(NnspecError):
    """A data file that cannot be used (missing, malformed, wrong shape)."""


class ModelError(NnspecError):
    """An ONNX model or an input to it that cannot be used."""


class ParityError(NnspecError):
    """The exported graph does not reproduce the NumPy network."""

    exit_code = 3
