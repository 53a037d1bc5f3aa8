"""Shape inference: walk the layers without data, as Keras' ``summary()`` does."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from ..errors import SpecError
from ..layers import Shape, ShapeError
from .models import Spec
from .rules import ModelIO, with_output_units


@dataclass(frozen=True)
class LayerSummary:
    name: str
    kind: str
    output_shape: Shape
    params: int | None  # None: an output layer of units: auto, without data to decide them
    trainable: bool = True  # false: a frozen layer with weights


def infer(spec: Spec, io: ModelIO) -> list[LayerSummary]:
    """Output shape and parameter count per layer; a shape error names its layer."""
    spec = with_output_units(spec, io)
    shape: Shape = (None, *io.shape)
    rows = []
    for i, (layer, name) in enumerate(zip(spec.layers, spec.layer_names(), strict=True)):
        try:
            out = layer.output_shape(shape)
        except ShapeError as e:
            raise SpecError([spec.source.issue(("layers", i), f"({layer.kind}): {e}")]) from None
        frozen = getattr(layer, "trainable", True) is False
        rows.append(LayerSummary(name, layer.kind, out, layer.param_count(shape), not frozen))
        shape = out
    return rows


def format_shape(shape: Shape) -> str:
    return "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"


def summary(spec: Spec, io: ModelIO, rows: list[LayerSummary]) -> dict:
    """The layer summary as JSON-ready data: what ``nnspec validate --json`` prints and what
    ``summary_table`` and ``print_summary`` render. ``nnspec inspect --json`` gives the same
    keys for a model exported by nnspec."""
    total = sum(r.params or 0 for r in rows)
    frozen = sum(r.params or 0 for r in rows if not r.trainable)
    return {
        "name": spec.name,
        "task": spec.task,
        "input": [None, *io.shape],
        "layers": [
            {
                "name": r.name,
                "kind": r.kind,
                "output_shape": list(r.output_shape),
                "params": r.params,
                "trainable": r.trainable,
            }
            for r in rows
        ],
        "total_params": total,
        # Without data, an output layer of units: auto has unknown parameters (not counted).
        "params_known": all(r.params is not None for r in rows),
        "trainable_params": total - frozen,
        "frozen_params": frozen,
    }


_COLUMNS = ("layer", "kind", "output shape", "params", "trainable")
# Select Graphic Rendition codes: bold on, all attributes off.
_BOLD, _RESET = "\x1b[1m", "\x1b[0m"


def _cells(data: dict) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """(layer rows, total rows) of the table as text; "input" first, as Keras shows it."""
    body = [("input", "", format_shape(tuple(data["input"])), "0", "")]
    for layer in data["layers"]:
        # A layer without parameters has nothing to train or freeze: the cell stays empty.
        trainable = ("yes" if layer["trainable"] else "no") if layer["params"] != 0 else ""
        shape = format_shape(tuple(layer["output_shape"]))
        params = "auto" if layer["params"] is None else f"{layer['params']:,}"
        body.append((layer["name"], layer["kind"], shape, params, trainable))
    more = "" if data.get("params_known", True) else " + auto"
    totals = [
        ("total", "", "", f"{data['total_params']:,}{more}", ""),
        ("trainable", "", "", f"{data['trainable_params']:,}{more}", ""),
        ("frozen", "", "", f"{data['frozen_params']:,}", ""),
    ]
    return body, totals


def _lines(data: dict) -> list[str]:
    """The table's lines: title, column header, rule, layers, rule, totals."""
    body, totals = _cells(data)
    rows = [_COLUMNS, *body, *totals]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]

    def line(row) -> str:
        cells = (
            cell.rjust(w) if name == "params" else cell.ljust(w)
            for cell, w, name in zip(row, widths, _COLUMNS, strict=True)
        )
        # Three spaces between columns, no trailing spaces: readable in any viewer, and a
        # name of any length widens its column instead of being wrapped or cut.
        return "   ".join(cells).rstrip()

    # '-' rather than box-drawing characters: any encoding and any viewer shows it.
    rule = "-" * (sum(widths) + 3 * (len(widths) - 1))
    title = f"{data['name']} ({data['task']})"
    return [title, line(_COLUMNS), rule, *map(line, body), rule, *map(line, totals)]


def summary_table(data: dict) -> str:
    """The summary as plain text: the model's name and task, then one row per layer (layer,
    kind, output shape, params, trainable) and the total, trainable and frozen parameters."""
    return "\n".join(_lines(data))


def _styled(file) -> bool:
    """Whether ``file`` is a terminal that may get escape codes: never for a pipe or a file,
    and not where NO_COLOR is set (https://no-color.org) or the terminal is "dumb"."""
    if not (hasattr(file, "isatty") and file.isatty()):
        return False
    # Windows' console shows escape codes as text unless a program turns on its VT mode,
    # which Python does not: plain text there.
    if sys.platform == "win32":
        return False
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def print_summary(data: dict, file=None) -> None:
    """Print ``summary_table``; on a terminal the title and the column header are bold, and
    the text is otherwise the same, so what a user sees is what a pipe or a log gets."""
    file = file or sys.stdout
    lines = _lines(data)
    if _styled(file):
        lines[:2] = [f"{_BOLD}{line}{_RESET}" for line in lines[:2]]
    print("\n".join(lines), file=file)
