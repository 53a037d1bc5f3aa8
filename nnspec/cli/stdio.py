"""The command line's conventions for streams: ``-`` is standard input where a file is read
(specs, prediction inputs), and under ``--json`` errors are JSON objects on standard error."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

STDIN = "-"
STDIN_NAME = "<stdin>"  # how messages name standard input: "<stdin>:3:5: layers[0]..."
_LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<message>.*)$")
# "iris.onnx: no such model file": a file named first, without a line.
_FILE = re.compile(r"^(?P<file>[^\s:]+\.(?:ya?ml|onnx|csv|npy|npz|json|data)): (?P<message>.*)$")


def read_stdin_spec_text() -> str:
    """A spec's text from standard input (``-`` as the spec), with a file's size and UTF-8
    checks; messages name it ``<stdin>``."""
    from ..errors import Issue, SpecError
    from ..spec.models import MAX_SPEC_BYTES

    text = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            [
                Issue(
                    f"standard input holds over {MAX_SPEC_BYTES // 10**6} MB; a spec is "
                    "expected to be a few KB",
                    (),
                    STDIN_NAME,
                    None,
                    None,
                )
            ]
        )
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SpecError([Issue(f"not UTF-8 text: {e}", (), STDIN_NAME, None, None)]) from None


def read_inputs_argument(arg: str, feature_names, n_features):
    """``nnspec predict``'s rows: from a file, or (``-``) CSV text or .npy bytes on stdin."""
    from ..data.predict_inputs import read_inputs, read_inputs_bytes

    if arg != STDIN:
        return read_inputs(Path(arg), feature_names, n_features)
    return read_inputs_bytes(_read_stdin_bounded(), STDIN_NAME, feature_names, n_features)


def _read_stdin_bounded() -> bytes:
    """Standard input's bytes, refused past what a file input may hold or memory can take:
    read in 1 MiB pieces, since ``read(n)`` would allocate the whole bound first."""
    from .. import untrusted
    from ..errors import DataError

    limit = min(untrusted.MAX_FILE_BYTES, untrusted.memory_limit())
    pieces, total = [], 0
    while piece := sys.stdin.buffer.read1(2**20):
        total += len(piece)
        if total > limit:
            raise DataError(
                f"{STDIN_NAME}: over {limit / 2**20:,.0f} MiB of input; expected at most that "
                "(the memory this machine has free, or 16 GiB)"
            )
        pieces.append(piece)
    return b"".join(pieces)


def error_objects(error: Exception) -> list[dict]:
    """One ``{"file", "line", "column", "path", "message"}`` object per problem of ``error``:
    a spec error's located issues, or the ``file:line:col: message`` of any other message
    (None where a part is not known)."""
    from ..errors import SpecError, format_path

    if isinstance(error, SpecError):
        return [
            {
                "file": i.file,
                "line": i.line,
                "column": i.col,
                "path": format_path(i.path) or None,
                "message": i.message,
            }
            for i in error.issues
        ]
    out = []
    for text in str(error).splitlines() or [""]:
        m = _LOCATED.match(text)
        if m and not m.group("file").startswith(("error", "http")):
            line, col = int(m.group("line")), m.group("col")
            out.append(
                {
                    "file": m.group("file"),
                    "line": line,
                    "column": int(col) if col else None,
                    "path": None,
                    "message": m.group("message"),
                }
            )
        elif m := _FILE.match(text):
            out.append(
                {
                    "file": m.group("file"),
                    "line": None,
                    "column": None,
                    "path": None,
                    "message": m.group("message"),
                }
            )
        else:
            out.append({"file": None, "line": None, "column": None, "path": None, "message": text})
    return out


def print_error(error: Exception, as_json: bool, prefix: str = "") -> None:
    """The error on standard error: its text, or under ``--json`` one JSON object a line."""
    if not as_json:
        print(f"{prefix}{error}", file=sys.stderr)
        return
    for obj in error_objects(error):
        print(json.dumps({**obj, "error": type(error).__name__}), file=sys.stderr)
