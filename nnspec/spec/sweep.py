"""The ``sweep:`` block of a spec: which values of which fields ``nnspec sweep`` tries.

Only the block's own shape is checked here (by the same Pydantic validation as the rest of
the spec, with located errors); that each path exists and that every trial is a valid spec
is checked by ``nnspec.engines.sweep.expand_trials``, located at the path or value at fault.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    PositiveInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..layers import SpecModel

# A grid larger than this is a typo (a list pasted twice), not a plan.
MAX_TRIALS = 10_000
SWEEP_METRICS = ("val_loss", "val_accuracy", "val_mse", "val_r2")


class RangeSpec(SpecModel):
    """A range of numbers to draw from (`method: random` only), as a value of `space`."""

    low: float = Field(description="Smallest value drawn.")
    high: float = Field(description="Largest value drawn (must exceed low).")
    log: bool = Field(
        default=False,
        description="Draw uniformly in log space (for learning rates, weight decay); needs "
        "low > 0.",
    )
    integer: bool = Field(
        default=False, description="Round the value drawn to an integer (units, batch size)."
    )

    # Field validators (not a model one), so that the error points at the value at fault.
    @field_validator("high")
    @classmethod
    def _ordered(cls, high: float, info: ValidationInfo) -> float:
        low = info.data.get("low")
        if low is not None and not high > low:
            raise ValueError(f"expected a number greater than low ({low}), got {high}")
        return high

    @field_validator("log")
    @classmethod
    def _positive(cls, log: bool, info: ValidationInfo) -> bool:
        low = info.data.get("low")
        if log and low is not None and low <= 0:
            raise ValueError(f"log: true draws in log space and needs low > 0, got low {low}")
        return log

    def draw(self, rng) -> float | int:
        """One value, from a NumPy Generator."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.integer else float(value)


def _values_kind(value: object) -> str | None:
    if isinstance(value, list):
        return "list"
    return "range" if isinstance(value, dict) else None


Values = Annotated[
    Union[  # noqa: UP007
        Annotated[Annotated[list[Any], Field(min_length=1)], Tag("list")],
        Annotated[RangeSpec, Tag("range")],
    ],
    Discriminator(
        _values_kind,
        custom_error_type="sweep_values",
        custom_error_message="expected a list of values to try, or (method: random) a range "
        "{low, high}",
    ),
]


class SweepSpec(SpecModel):
    """Hyperparameter search run by `nnspec sweep`: each trial is this spec with the values
    of `space` put in; the sweep itself is not part of a trial."""

    method: Literal["grid", "random"] = Field(
        default="grid",
        description="grid: every combination of the listed values; random: `trials` "
        "combinations drawn with `seed` (lists are drawn from uniformly, ranges by their "
        "low/high/log).",
    )
    metric: Literal[SWEEP_METRICS] = Field(  # type: ignore[valid-type]
        default="val_loss",
        description="Validation metric that chooses the best trial: val_loss (lowest), "
        "val_accuracy (classification, highest), val_mse (regression, lowest) or val_r2 "
        "(regression, highest); taken at the best epoch under early stopping, else the last. "
        "Test metrics are never used to choose. Needs train.validation_fraction > 0.",
    )
    trials: PositiveInt | None = Field(
        default=None,
        le=MAX_TRIALS,
        description="method: random only: how many trials to draw.",
    )
    seed: int = Field(
        default=0, ge=0, description="method: random only: seed of the draws of the trials."
    )
    space: dict[str, Values] = Field(
        min_length=1,
        description="The values to try, by path into the spec: `train.optimizer.lr: [0.01, "
        "0.1]`, `layers[0].units: [10, 50]`; a list of values (any YAML value: numbers, "
        "strings, mappings), or for method: random a range {low, high, log, integer}.",
    )

    @model_validator(mode="after")
    def _method_fields(self) -> SweepSpec:
        if self.method == "random" and self.trials is None:
            raise ValueError("method: random needs trials: N (how many to draw)")
        if self.method == "grid" and self.trials is not None:
            raise ValueError(
                "trials is for method: random; a grid runs every combination of the values"
            )
        return self
