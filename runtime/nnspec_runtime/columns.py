"""Raw-column inputs of tabular models (``nnspec_tabular`` metadata): one graph input per
column, float32 (batch,) for numbers with NaN for missing, string (batch,) for categories.

``RawColumns.feeds`` takes a pandas DataFrame, a pyarrow Table, a dict of columns (name ->
sequence) or rows as ``csv.DictReader`` gives them (a list of dicts), maps columns by name,
and checks every value before onnxruntime sees it; errors name the column and the row (from
0). pandas and pyarrow are never imported here: their objects are read through their methods.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np

from .errors import ColumnError, RuntimeModelError

# Cells that stand for a missing value in columns that accept one: empty, and the markers
# pandas reads as missing by default that tables such as R's exports write. nnspec's CSV
# reader and encoder use this set too (the runtime never imports nnspec; the reverse is fine).
MISSING = frozenset({"", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"})


def is_na(value) -> bool:
    """None, or pandas' missing-value singletons (``pd.NA`` of nullable columns, ``NaT``),
    recognized without importing pandas."""
    return value is None or type(value).__name__ in ("NAType", "NaTType")


def category_text(value) -> str:
    """A value as the category text nnspec trained on ("" when missing): text stripped,
    integers (and integral floats, as pandas stores an int column with gaps) as digits."""
    if is_na(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    return "" if text in MISSING else text


def _as_columns(x) -> Mapping:
    """name -> sequence, from the kinds of input ``feeds`` takes."""
    if hasattr(x, "to_pydict") and hasattr(x, "column_names"):  # pyarrow.Table
        return x.to_pydict()
    if hasattr(x, "columns") and hasattr(x, "iloc"):  # pandas.DataFrame
        return {str(c): x[c].to_numpy() for c in x.columns}
    if isinstance(x, Mapping):
        return x
    if isinstance(x, (list, tuple)) and all(isinstance(r, Mapping) for r in x):
        names = list(dict.fromkeys(k for r in x for k in r))
        return {k: [r.get(k) for r in x] for k in names}
    raise RuntimeModelError(
        "this model takes raw columns: a pandas DataFrame, a pyarrow Table, a dict of columns "
        f"(name -> values) or a list of row dicts (csv.DictReader); got {type(x).__name__}"
    )


def cpu_only_nodes(session) -> str:
    """``: the LabelEncoder nodes of ...`` for a tabular model with categorical columns (the
    nodes onnxruntime has no CUDA kernel for), else ``""``: said in a strict refusal."""
    meta = session.get_modelmeta().custom_metadata_map
    try:
        columns = json.loads(meta["nnspec_tabular"])["columns"]
    except (KeyError, ValueError, TypeError, RecursionError):
        return ""
    names = [c.get("name") for c in columns if c.get("kind") == "categorical"]
    if not names:
        return ""
    return (
        f": the string inputs and ai.onnx.ml LabelEncoder nodes of the categorical column(s) "
        f"{', '.join(map(str, names))}, which look categories up on the CPU"
    )


class RawColumns:
    """What a tabular model's metadata says about its inputs, and the checks on them."""

    def __init__(self, metadata: str, input_names: list[str]):
        try:
            meta = json.loads(metadata)
            self.columns = list(meta["columns"])
            self.unknown = meta.get("unknown", "ignore")
            names = [c["name"] for c in self.columns]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise RuntimeModelError("the model's metadata nnspec_tabular is damaged") from None
        if sorted(names) != sorted(input_names):
            raise RuntimeModelError(
                f"the model's metadata lists the columns {names}, but its graph takes {input_names}"
            )
        self.names = names
        self.categories = {
            c["name"]: set(c["categories"]) for c in self.columns if c["kind"] == "categorical"
        }

    def feeds(self, x) -> dict[str, np.ndarray]:
        """The graph's inputs for ``x``, checked; see the module docstring."""
        data = _as_columns(x)
        missing = [n for n in self.names if n not in data]
        if missing:
            raise RuntimeModelError(
                f"missing column(s) {', '.join(missing)}; the model takes the columns "
                f"{', '.join(self.names)} (got {', '.join(map(str, data)) or 'none'})"
            )
        out, n = {}, None
        for col in self.columns:
            name = col["name"]
            values = data[name]
            length = len(values)
            if n is not None and length != n:
                raise RuntimeModelError(
                    f"column '{name}' has {length} rows, but '{self.names[0]}' has {n}"
                )
            n = length
            if col["kind"] == "categorical":
                out[name] = self._categories(name, values)
            else:
                out[name] = self._numbers(name, values, col.get("impute") is not None)
        return out

    def _numbers(self, name: str, values, imputed: bool) -> np.ndarray:
        arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
        if arr.dtype.kind in "biuf":
            with np.errstate(over="ignore"):
                col = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
        else:  # text cells (CSV rows), None, mixed objects: one at a time, for the message
            col = np.empty(len(arr), np.float32)
            for i, v in enumerate(arr.tolist()):
                if is_na(v) or (isinstance(v, str) and v.strip() in MISSING):
                    col[i] = np.nan
                    continue
                try:
                    col[i] = float(v)
                except (TypeError, ValueError):
                    raise ColumnError(name, i, f"expected a number, got {v!r}") from None
        bad = np.isinf(col)
        if not imputed:
            bad |= np.isnan(col)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            got = "a missing value (NaN)" if np.isnan(col[i]) else "inf (in float32)"
            also = "; the model imputes nothing for this column" if not imputed else ""
            raise ColumnError(name, i, f"expected a number, got {got}{also}")
        return col

    def _categories(self, name: str, values) -> np.ndarray:
        arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        if arr.dtype.kind in "iu":  # integer categories: their digits, all at once
            col = arr.reshape(-1).astype(str).astype(object)
        else:
            # A column holds few distinct texts: each is cleaned once (a tenth of the time of
            # category_text per cell on 100,000 rows). Only str is memoized: 1 and True hash
            # alike but read differently.
            memo: dict[str, str] = {}
            out = []
            for v in arr.reshape(-1).tolist():
                if type(v) is str:
                    t = memo.get(v)
                    if t is None:
                        t = memo[v] = category_text(v)
                else:
                    t = category_text(v)
                out.append(t)
            col = np.array(out, dtype=object)
        if self.unknown == "error":
            known = self.categories[name]
            bad = next((i for i, v in enumerate(col.tolist()) if v not in known), None)
            if bad is not None:
                got = "a missing value" if col[bad] == "" else f"{col[bad]!r}"
                raise ColumnError(
                    name,
                    bad,
                    f"expected one of the categories seen in training "
                    f"({', '.join(sorted(known))}), got {got} (the model was trained "
                    "with preprocess.unknown: error)",
                )
        return col
