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


def read_spec_argument(arg: str):
    """The spec named on the command line: a file, or standard input for ``-``."""
    from ..spec.models import MAX_SPEC_BYTES, load_spec, parse_spec

    if arg != STDIN:
        return load_spec(arg)
    text = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
    from ..errors import Issue, SpecError

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
        decoded = text.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SpecError([Issue(f"not UTF-8 text: {e}", (), STDIN_NAME, None, None)]) from None
    return parse_spec(decoded, STDIN_NAME)


def read_inputs_argument(arg: str, feature_names, n_features):
    """``nnspec predict``'s rows: from a file, or (``-``) CSV text or .npy bytes on stdin."""
    from ..data.predict_inputs import read_inputs, read_inputs_bytes

    if arg != STDIN:
        return read_inputs(Path(arg), feature_names, n_features)
    return read_inputs_bytes(sys.stdin.buffer.read(), STDIN_NAME, feature_names, n_features)


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
