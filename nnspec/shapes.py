"""Shape inference: walk the layers without data, as Keras' ``summary()`` does."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SpecError
from .layers import Shape, ShapeError
from .rules import ModelIO
from .spec import Spec


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


def summary_table(spec: Spec, io: ModelIO, rows: list[LayerSummary]) -> str:
    """A plain-text table: layer, kind, output shape, parameters, with the total."""
    header = ("layer", "kind", "output shape", "params")
    body = [("input", "", format_shape((None, *io.shape)), "0")]
    body += [
        (
            r.name,
            r.kind + ("" if r.trainable else " (frozen)"),
            format_shape(r.output_shape),
            f"{r.params:,}",
        )
        for r in rows
    ]
    widths = [max(len(row[c]) for row in [header, *body]) for c in range(4)]

    def line(row):
        return "  ".join(
            cell.rjust(w) if c == 3 else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    total = sum(r.params for r in rows)
    frozen = sum(r.params for r in rows if not r.trainable)
    rule = "-" * len(line(header))
    return "\n".join(
        [
            f"{spec.name} ({spec.task})",
            line(header),
            rule,
            *map(line, body),
            rule,
            f"total parameters: {total:,}"
            + (f" ({frozen:,} frozen, {total - frozen:,} trainable)" if frozen else ""),
        ]
    )
