"""Shape inference: walk the layers without data, as Keras' ``summary()`` does."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..layers import Shape, ShapeError
from .models import Spec
from .rules import ModelIO


@dataclass(frozen=True)
class LayerSummary:
    name: str
    kind: str
    output_shape: Shape
    params: int
    trainable: bool = True  # false: a frozen layer with weights


def infer(spec: Spec, io: ModelIO) -> list[LayerSummary]:
    """Output shape and parameter count per layer; a shape error names its layer."""
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
    total = sum(r.params for r in rows)
    frozen = sum(r.params for r in rows if not r.trainable)
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
        "trainable_params": total - frozen,
        "frozen_params": frozen,
    }


# Cells are text as given: no markup ("[...]"), no ":emoji:" codes, no number colouring.
_PLAIN_TEXT = {"markup": False, "emoji": False, "highlight": False}
# rich.box.HORIZONTALS drawn with '-': a rule under the header and between sections only.
_ASCII_RULES = " -- \n    \n -- \n    \n -- \n -- \n    \n -- \n"
_COLUMNS = ("layer", "kind", "output shape", "params", "trainable")


def _cells(data: dict) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """(layer rows, total rows) of the table as text; "input" first, as Keras shows it."""
    body = [("input", "", format_shape(tuple(data["input"])), "0", "")]
    for layer in data["layers"]:
        # A layer without parameters has nothing to train or freeze: the cell stays empty.
        trainable = ("yes" if layer["trainable"] else "no") if layer["params"] else ""
        shape = format_shape(tuple(layer["output_shape"]))
        body.append((layer["name"], layer["kind"], shape, f"{layer['params']:,}", trainable))
    totals = [
        ("total", "", "", f"{data['total_params']:,}", ""),
        ("trainable", "", "", f"{data['trainable_params']:,}", ""),
        ("frozen", "", "", f"{data['frozen_params']:,}", ""),
    ]
    return body, totals


def _table(data: dict, terminal: bool):
    # Imported here, not at the top: rich costs tens of milliseconds, and only the commands
    # that print a table pay for it (``nnspec validate`` must start in under half a second).
    from rich import box
    from rich.table import Table
    from rich.text import Text

    # Plain output (a pipe, a file, a CI log) draws its rules with '-' so that any encoding
    # and any viewer shows it; a terminal gets rich's line characters and styles.
    rules = box.HORIZONTALS if terminal else box.Box(_ASCII_RULES, ascii=True)
    table = Table(
        box=rules,
        show_edge=False,
        pad_edge=False,
        header_style="bold" if terminal else "",
        title=None,
    )
    for name in _COLUMNS:
        table.add_column(name, justify="right" if name == "params" else "left", no_wrap=True)
    body, totals = _cells(data)
    for i, row in enumerate(body):
        # On a terminal the input row and frozen layers are dimmed, the total is bold.
        muted = terminal and (i == 0 or row[4] == "no")
        table.add_row(*(Text(cell) for cell in row), style="dim" if muted else "")
    table.add_section()
    for i, row in enumerate(totals):
        table.add_row(*(Text(cell) for cell in row), style="bold" if terminal and i == 0 else "")
    return table


def summary_table(data: dict) -> str:
    """The summary as plain text: the model's name and task, then one row per layer (layer,
    kind, output shape, params, trainable) and the total, trainable and frozen parameters.

    The same text rich draws for ``_table(data, terminal=False)`` (a test holds the two
    equal), written out here so that a pipe or a file does not pay for importing rich: the
    ``nnspec validate`` start-up is measured in tenths of a second.
    """
    body, totals = _cells(data)
    rows = [_COLUMNS, *body, *totals]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]

    def line(row) -> str:
        cells = (
            cell.rjust(w) if name == "params" else cell.ljust(w)
            for cell, w, name in zip(row, widths, _COLUMNS, strict=True)
        )
        # Columns are 3 apart: rich's one space of padding on each side and a blank divider.
        return "   ".join(cells).rstrip()

    rule = "-" * (sum(widths) + 3 * (len(widths) - 1))
    title = f"{data['name']} ({data['task']})"
    return "\n".join([title, line(_COLUMNS), rule, *map(line, body), rule, *map(line, totals)])


def _rich_plain_table(data: dict) -> str:
    """What rich draws for the plain table: the reference ``summary_table`` is tested against."""
    from rich.console import Console

    # Wide enough that no layer name is ever wrapped or cut: the table keeps its own width.
    console = Console(width=10_000, color_system=None, force_terminal=False, **_PLAIN_TEXT)
    with console.capture() as captured:
        console.print(_table(data, terminal=False))
    lines = [line.rstrip() for line in captured.get().splitlines()]
    return "\n".join([f"{data['name']} ({data['task']})", *lines])


def print_summary(data: dict, file=None) -> None:
    """Print the summary: styled on a terminal, else the plain text of ``summary_table``."""
    import sys

    file = file or sys.stdout
    if not (hasattr(file, "isatty") and file.isatty()):
        print(summary_table(data), file=file)
        return
    from rich.console import Console

    console = Console(file=file, **_PLAIN_TEXT)
    console.print(f"{data['name']} ({data['task']})", style="bold")
    console.print(_table(data, terminal=True))
