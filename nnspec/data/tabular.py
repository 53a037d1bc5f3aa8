"""Tables of raw columns: categories one-hot encoded, missing numbers imputed, both fitted on
the training split, as the exported graph does them (see ``nnspec/onnxio/tabular.py``).

A column table maps a column name to a NumPy array of one column (samples,): float64 with NaN
for a missing value (numeric columns), or an object array of ``str`` with ``""`` for a missing
value (categorical columns). ``TabularEncoder.fit`` learns, from the training split only:

- per categorical column, its categories, sorted (numerically when every one is an integer);
- per numeric column with imputation, the fill value of its strategy (median, mean,
  most_frequent or constant, as scikit-learn's ``SimpleImputer``).

``transform`` gives the (samples, features) float64 matrix that the first layer takes (after
the network's standardization): the numeric columns in feature order, then each categorical
column's one-hot block, in feature order. The standardization that follows applies to the
numeric columns only (the network keeps mean 0, scale 1 for the one-hot columns).

Entry points for other sources (DataFrames, Parquet, Arrow tables): ``columns_from_mapping``
turns any mapping of name -> sequence into a column table with the same checks as the CSV
reader, and ``TabularEncoder.fit`` / ``transform`` do the rest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from nnspec_runtime.columns import MISSING, category_text, is_na

from ..errors import DataError
from .csv_table import Table

STRATEGIES = ("median", "mean", "most_frequent", "constant")
ColumnTable = dict[str, np.ndarray]


@dataclass(frozen=True)
class Imputation:
    strategy: str  # one of STRATEGIES
    value: float | None = None  # the constant of strategy constant (None: 0)


@dataclass(frozen=True)
class TabularPlan:
    """What the spec asks for: which feature columns are categories, how to fill numbers."""

    features: list[str]  # every feature column, in order
    categorical: list[str] = field(default_factory=list)
    impute: dict[str, Imputation] = field(default_factory=dict)  # numeric column -> how
    unknown: str = "ignore"  # or "error"
    max_categories: int = 100
    # What the spec says, before the feature columns are known (see ``with_features``).
    impute_default: Imputation | None = None
    impute_columns: dict[str, Imputation] = field(default_factory=dict)

    @property
    def numeric(self) -> list[str]:
        return [f for f in self.features if f not in self.categorical]

    def with_features(self, features: list[str]) -> TabularPlan:
        """The plan for these feature columns: with ``impute_default``, every numeric column
        is imputed (a column complete in training may miss values at deployment), each by its
        override in ``impute_columns`` when there is one."""
        impute = dict(self.impute)
        if self.impute_default is not None:
            for name in features:
                if name not in self.categorical:
                    impute[name] = self.impute_columns.get(name, self.impute_default)
        return replace(self, features=list(features), impute=impute)


def sort_categories(values) -> list[str]:
    """Distinct non-missing categories, sorted: numerically when all are integers (2 < 10),
    else as text (code point order, as NumPy and scikit-learn sort strings)."""
    unique = sorted(set(values) - {""})
    try:
        return sorted(unique, key=int)
    except ValueError:
        return unique


def _located(where: str, rows: np.ndarray | None, i: int) -> str:
    """``file:line`` of data row ``i`` when the rows' lines are known, else ``where, row i``."""
    if rows is not None:
        return f"{where}:{int(rows[i])}"
    return f"{where}: row {i}"


# --- reading ------------------------------------------------------------------------------


def columns_from_table(table: Table, plan: TabularPlan, cols: Sequence[int]) -> ColumnTable:
    """The feature columns of a CSV table (``cols``: their indices, in ``plan.features``
    order). Categorical columns come back as text; numeric columns as float64, with NaN for
    a missing cell only where the plan imputes the column: elsewhere the CSV reader's errors
    stand unchanged (an empty cell is ``expected a number, got an empty cell``)."""
    out: ColumnTable = {}
    for name, j in zip(plan.features, cols, strict=True):
        if name in plan.categorical:
            out[name] = np.array([table.text(r, j) for r in table.rows], dtype=object)
            out[name][np.isin(out[name], list(MISSING))] = ""
        elif name in plan.impute:
            out[name] = table.numbers_or_missing(j)
        else:
            out[name] = table.numbers([j])[:, 0]
    check_not_empty(out, plan, table.source)
    return out


def columns_from_mapping(data: Mapping, plan: TabularPlan, where: str) -> ColumnTable:
    """A column table from a mapping of column name -> sequence (a dict of lists or arrays,
    a pandas DataFrame, ``pyarrow.Table.to_pydict()``); errors name the column and row."""
    out: ColumnTable = {}
    n = None
    for name in plan.features:
        if name not in data:
            raise DataError(
                f"{where}: no column '{name}'; the columns are: {', '.join(map(str, data))}"
            )
        values = list(data[name])
        if n is not None and len(values) != n:
            raise DataError(f"{where}: column '{name}' has {len(values)} rows, expected {n}")
        n = len(values)
        if name in plan.categorical:
            out[name] = np.array([category_text(v) for v in values], dtype=object)
            continue
        col = np.empty(n)
        for i, v in enumerate(values):
            col[i] = _number(v, name, i, where, name in plan.impute)
        out[name] = col
    check_not_empty(out, plan, where)
    return out


def _number(value, name: str, i: int, where: str, missing_ok: bool) -> float:
    if is_na(value) or (isinstance(value, str) and value.strip() in MISSING):
        number = math.nan
    elif isinstance(value, (str, bytes)):
        try:
            number = float(value)
        except ValueError:
            raise DataError(
                f"{where}: row {i}: column '{name}': expected a number, got {value!r}"
            ) from None
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(
                f"{where}: row {i}: column '{name}': expected a number, got {value!r}"
            ) from None
    if math.isnan(number) and not missing_ok:
        raise DataError(
            f"{where}: row {i}: column '{name}': expected a number, got a missing value; "
            "add preprocess.impute to fill missing values"
        )
    if math.isinf(number):
        raise DataError(f"{where}: row {i}: column '{name}': expected a finite number, got inf")
    return number


def check_not_empty(columns: ColumnTable, plan: TabularPlan, where: str) -> None:
    """A column with no value at all cannot be fitted: a located error, naming it."""
    for name, col in columns.items():
        empty = (col == "").all() if col.dtype == object else np.isnan(col).all()
        if empty:
            raise DataError(
                f"{where}: column '{name}' is entirely empty ({len(col)} missing cells); "
                "expected at least one value to learn from: fill it, or leave it out of "
                "data.features"
            )


def take(columns: ColumnTable, idx: np.ndarray) -> ColumnTable:
    return {k: v[idx] for k, v in columns.items()}


# --- fitting and encoding -----------------------------------------------------------------


def fill_value(values: np.ndarray, how: Imputation) -> float:
    """The fill value of ``how`` for a numeric training column (NaN = missing), as
    scikit-learn's SimpleImputer computes it (most_frequent: the smallest of the ties)."""
    seen = values[~np.isnan(values)]
    if how.strategy == "constant":
        return 0.0 if how.value is None else float(how.value)
    if how.strategy == "mean":
        return float(seen.mean())
    if how.strategy == "median":
        return float(np.median(seen))
    unique, counts = np.unique(seen, return_counts=True)  # sorted: argmax takes the smallest
    return float(unique[np.argmax(counts)])


@dataclass(frozen=True)
class TabularEncoder:
    """The fitted encoding: see the module docstring. ``fill`` maps an imputed numeric column
    to its fill value; ``categories`` a categorical column to its sorted categories."""

    numeric: list[str]
    categorical: list[str]
    categories: dict[str, list[str]]
    fill: dict[str, float]
    strategies: dict[str, Imputation]
    unknown: str = "ignore"

    @classmethod
    def fit(cls, train: ColumnTable, plan: TabularPlan, where: str) -> TabularEncoder:
        """Fit on the training split's columns; ``where`` names the data in messages."""
        categories = {}
        for name in plan.categorical:
            cats = sort_categories(train[name].tolist())
            if not cats:
                raise DataError(
                    f"{where}: column '{name}' has no category in the training split (all "
                    f"{len(train[name])} cells are missing); expected at least one"
                )
            if len(cats) > plan.max_categories:
                raise DataError(
                    f"{where}: column '{name}' has {len(cats)} categories in the training "
                    f"split, over preprocess.max_categories ({plan.max_categories}); each is "
                    "one input of the first layer: leave the column out (an identifier?), or "
                    f"raise preprocess.max_categories to {len(cats)} or more if meant"
                )
            categories[name] = cats
        fill = {}
        for name, how in plan.impute.items():
            if np.isnan(train[name]).all() and how.strategy != "constant":
                raise DataError(
                    f"{where}: column '{name}' has no value in the training split (all "
                    f"{len(train[name])} cells are missing), so its {how.strategy} is "
                    "undefined; expected at least one number, or impute it with a constant"
                )
            fill[name] = fill_value(train[name], how)
        return cls(
            plan.numeric, plan.categorical, categories, fill, dict(plan.impute), plan.unknown
        )

    @property
    def width(self) -> int:
        """Values per encoded row: one per numeric column, one per category."""
        return len(self.numeric) + sum(len(c) for c in self.categories.values())

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded columns: numeric ones as they are, ``origin=usa`` for one-hot."""
        names = list(self.numeric)
        for name in self.categorical:
            names += [f"{name}={c}" for c in self.categories[name]]
        return names

    def describe(self) -> str:
        """``6 numeric + origin (3) = 9``: how the encoded width is made up."""
        parts = [f"{len(self.numeric)} numeric"] if self.numeric else []
        parts += [f"{n} ({len(self.categories[n])})" for n in self.categorical]
        return f"{' + '.join(parts)} = {self.width}"

    def transform(
        self, columns: ColumnTable, where: str = "<data>", rows: np.ndarray | None = None
    ) -> np.ndarray:
        """(samples, width) float64: imputed numbers, then one-hot blocks. A missing number
        in a column without imputation, and (with unknown: error) an unknown or missing
        category, are errors at ``where`` (with the file line of each row, given ``rows``)."""
        n = len(next(iter(columns.values()))) if columns else 0
        out = np.zeros((n, self.width))
        for k, name in enumerate(self.numeric):
            col = np.asarray(columns[name], np.float64)
            missing = np.isnan(col)
            if missing.any():
                if name not in self.fill:
                    i = int(np.flatnonzero(missing)[0])
                    raise DataError(
                        f"{_located(where, rows, i)}: column '{name}': expected a number, got a "
                        "missing value; add preprocess.impute to fill missing values"
                    )
                col = np.where(missing, self.fill[name], col)
            out[:, k] = col
        k = len(self.numeric)
        for name in self.categorical:
            cats = self.categories[name]
            index = {c: i for i, c in enumerate(cats)}
            codes = np.array([index.get(v, -1) for v in columns[name]], dtype=np.int64)
            if self.unknown == "error" and (codes < 0).any():
                i = int(np.flatnonzero(codes < 0)[0])
                value = columns[name][i]
                got = "a missing value" if value == "" else f"'{value}'"
                raise DataError(
                    f"{_located(where, rows, i)}: column '{name}': expected one of the "
                    f"categories seen in training ({', '.join(cats)}), got {got} "
                    "(preprocess.unknown is error; unknown: ignore encodes it as all zeros)"
                )
            hit = codes >= 0
            out[np.flatnonzero(hit), k + codes[hit]] = 1.0
            k += len(cats)
        return out

    def as_metadata(self) -> dict:
        """What the exported model records (``nnspec_tabular``), and the runtime reads back:
        the raw columns in input order, their kinds, categories and fill values."""
        cols = []
        for name in self.numeric:
            entry = {"name": name, "kind": "numeric", "impute": None}
            if name in self.fill:
                how = self.strategies[name]
                entry["impute"] = {"strategy": how.strategy, "value": self.fill[name]}
            cols.append(entry)
        for name in self.categorical:
            cols.append({"name": name, "kind": "categorical", "categories": self.categories[name]})
        return {"layout": "one input per column", "unknown": self.unknown, "columns": cols}

    def sample_columns(self, n: int, rng: np.random.Generator, scale: dict) -> ColumnTable:
        """``n`` seeded raw rows for a parity check without held-out data: numbers at the
        scale of ``scale`` (column -> (mean, std)), a missing value in every imputed column
        once, every category in turn and (with unknown: ignore) an unknown one."""
        out: ColumnTable = {}
        for name in self.numeric:
            mean, std = scale.get(name, (0.0, 1.0))
            col = mean + std * rng.standard_normal(n)
            if name in self.fill:
                col[rng.integers(n)] = np.nan
            out[name] = col
        for name in self.categorical:
            cats = list(self.categories[name])
            if self.unknown == "ignore":
                cats.append("<unknown>")
            out[name] = np.array([cats[i % len(cats)] for i in range(n)], dtype=object)
        return out
