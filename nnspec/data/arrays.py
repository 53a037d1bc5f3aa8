"""In-memory data: NumPy arrays, pandas DataFrames and pyarrow Tables as nnspec Datasets.

``nnspec.train(spec, x, y)`` and the scikit-learn estimators come through here. ``x`` is
(samples, features), (samples, height, width) or (samples, channels, height, width) numbers,
a DataFrame (its columns are the features, by name) or a pyarrow Table; ``y`` is class labels
of any sortable hashable type (their sorted order is the class order) or real targets, or,
with a DataFrame or a Table, the name of its target column.

pandas and pyarrow are never imported here: an object is recognised by its module, and its
own methods turn it into NumPy, so neither is needed unless the caller already has one.
``from_frame`` is the one place a DataFrame or Table becomes numbers (the hook for
categorical columns).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .core import DataInfo, Dataset

# Real-number kinds: bool, signed and unsigned integers, floats (as in core._REAL).
_REAL = "biuf"


def _module(obj) -> str:
    return type(obj).__module__.split(".")[0]


def is_frame(obj) -> bool:
    """A pandas DataFrame or a pyarrow Table (or RecordBatch)."""
    return (_module(obj) == "pandas" and hasattr(obj, "columns") and hasattr(obj, "iloc")) or (
        _module(obj) == "pyarrow" and hasattr(obj, "column_names")
    )


@dataclass(frozen=True)
class Features:
    """Numbers of a frame or an array: x (samples, *sample shape) float64 and its names."""

    x: np.ndarray
    names: list[str]
    shape: tuple[int, ...] | None  # (channels, height, width) for images, else None


def _pandas_column(frame, name, where: str) -> np.ndarray:
    col = frame[name]
    dtype = col.dtype
    kind = getattr(dtype, "kind", "O")
    # Nullable integer and boolean columns (Int64, boolean) have kind i/b but hold pd.NA.
    if kind not in _REAL:
        raise DataError(
            f"{where}: column '{name}': expected numbers, got {dtype} values "
            f"(first: {col.iloc[0]!r}); convert it to numbers, or leave it out of the features"
        )
    missing = col.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{where}: column '{name}' has a missing value (NaN/None) at row {i} (index "
            f"{frame.index[i]!r}); expected numbers in every row"
        )
    return col.to_numpy(dtype=np.float64)


def _arrow_column(table, name, where: str) -> np.ndarray:
    import pyarrow as pa  # the caller has a pyarrow object: pyarrow is installed

    col = table.column(name)
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise DataError(
            f"{where}: column '{name}': expected numbers, got {t} values; convert it to "
            "numbers, or leave it out of the features"
        )
    if col.null_count:
        mask = col.is_null()
        if hasattr(mask, "combine_chunks"):
            mask = mask.combine_chunks()
        i = int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])
        raise DataError(
            f"{where}: column '{name}' has a missing value (null) at row {i}; expected "
            "numbers in every row"
        )
    out = np.asarray(col.to_numpy(), dtype=np.float64)
    _check_finite(out.reshape(-1, 1), f"{where}: column '{name}'", rows_only=True)
    return out


def _columns(frame) -> list:
    return list(frame.columns) if _module(frame) == "pandas" else list(frame.column_names)


def from_frame(
    frame, features: Sequence[str] | None = None, exclude: Sequence = (), where: str = "x"
) -> Features:
    """A DataFrame's or Table's feature columns as (samples, features) float64.

    ``features``: the columns to use, in order (default: all but those in ``exclude``).
    Every column must be numeric (bool, integer, float) without missing values; anything else
    is refused with the column's name.
    """
    columns = _columns(frame)
    names = [str(c) for c in columns]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{where}: column name(s) {', '.join(twice)} appear more than once")
    if features is None:
        picked = [c for c in columns if c not in set(exclude)]
    else:
        unknown = [f for f in features if f not in names]
        if unknown:
            raise DataError(
                f"{where}: column(s) {', '.join(map(str, unknown))} not found; the columns "
                f"are: {', '.join(names)}"
            )
        picked = [columns[names.index(f)] for f in features]
    if not picked:
        raise DataError(f"{where}: no feature columns (the columns are: {', '.join(names)})")
    if _module(frame) == "pandas":
        if len(frame) == 0:
            raise DataError(f"{where}: the DataFrame has no rows; expected at least one sample")
        cols = [_pandas_column(frame, c, where) for c in picked]
    else:
        if frame.num_rows == 0:
            raise DataError(f"{where}: the Table has no rows; expected at least one sample")
        cols = [_arrow_column(frame, c, where) for c in picked]
    x = np.column_stack(cols)
    _check_finite(x, where, names=[str(c) for c in picked])
    return Features(x, [str(c) for c in picked], None)


def from_array(x, where: str = "x") -> Features:
    """A NumPy array (or anything np.asarray takes) as (samples, *sample shape) float64."""
    if is_frame(x):
        return from_frame(x, where=where)
    if _module(x) == "pandas":  # a Series as x: one feature
        x = x.to_numpy()
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: cannot be read as an array of numbers: {e}") from None
    if a.ndim not in (2, 3, 4):
        raise DataError(
            f"{where}: expected numbers of shape (samples, features), (samples, height, width) "
            f"or (samples, channels, height, width), got {a.dtype} of shape {a.shape}"
            + ("; a single feature is x.reshape(-1, 1)" if a.ndim == 1 else "")
        )
    if a.dtype.kind not in _REAL:
        raise DataError(
            f"{where}: expected real numbers (bool, integer or float), got dtype {a.dtype}"
            + (
                " (Python objects); convert with np.asarray(x, dtype=float)"
                if a.dtype == object
                else ""
            )
        )
    if a.size == 0:
        raise DataError(f"{where}: the array of shape {a.shape} is empty; expected samples")
    shape = None if a.ndim == 2 else (1, *a.shape[1:]) if a.ndim == 3 else tuple(a.shape[1:])
    flat = np.asarray(a.reshape(len(a), -1), dtype=np.float64)
    _check_finite(flat, where)
    return Features(flat, [f"x{i}" for i in range(flat.shape[1])], shape)


def _check_finite(x: np.ndarray, where: str, names=None, rows_only: bool = False) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        what = "" if rows_only else (f" column '{names[j]}'," if names else f" column {j},")
        raise DataError(
            f"{where}:{what} row {i}: expected finite numbers, got {x[i, j]} (a missing value?)"
        )


def labels_of(y, n: int, where: str = "y") -> list:
    """``y`` (array, Series, list) as a list of n Python labels, checked for missing ones."""
    if _module(y) == "pandas":
        y = y.to_numpy()
    elif _module(y) == "pyarrow":
        y = y.to_pylist()
    a = np.asarray(y, dtype=object) if isinstance(y, list | tuple) else np.asarray(y)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise DataError(f"{where}: expected class labels of shape (samples,), got {a.shape}")
    if len(a) != n:
        raise DataError(f"{where}: expected {n} labels, one per sample of x, got {len(a)}")
    labels = a.tolist()
    for i, v in enumerate(labels):
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            raise DataError(f"{where}: label at index {i} is {v!r}; expected a class label")
    return labels


def encode_labels(labels: list, where: str, classes: list | None = None, held_out=False):
    """Labels -> (class indices (samples,) int64, class labels in sorted order).

    ``classes``: the classes of the training split, which held-out labels must be among.
    """
    if classes is None:
        try:
            classes = sorted(set(labels))
        except TypeError:
            kinds = sorted({type(v).__name__ for v in labels})
            raise DataError(
                f"{where}: labels of mixed types ({', '.join(kinds)}) cannot be put in order; "
                "expected labels of one type"
            ) from None
        if len(classes) < 2 and not held_out:
            raise DataError(f"{where}: expected at least 2 classes in the labels, found {classes}")
    index = {c: i for i, c in enumerate(classes)}
    unseen = [v for v in dict.fromkeys(labels) if v not in index]
    if unseen:
        raise DataError(
            f"{where}: label(s) {', '.join(map(repr, unseen[:5]))} are not among the training "
            f"classes {classes}; the network cannot predict a class it never saw"
        )
    return np.array([index[v] for v in labels], dtype=np.int64), classes


def _py(v):
    """A NumPy scalar as the Python value it holds (np.str_('a') -> 'a'), for class names."""
    return v.item() if isinstance(v, np.generic) else v


def regression_targets(y, n: int, where: str = "y") -> np.ndarray:
    """``y`` as (samples, outputs) float64."""
    if _module(y) == "pandas":
        y = y.to_numpy()
    elif _module(y) == "pyarrow":
        y = y.to_numpy()
    a = np.asarray(y)
    if a.dtype.kind not in _REAL:
        raise DataError(f"{where}: expected real-valued regression targets, got dtype {a.dtype}")
    if a.ndim not in (1, 2) or len(a) != n:
        raise DataError(
            f"{where}: expected {n} targets of shape ({n},) or ({n}, outputs), one per sample "
            f"of x, got shape {a.shape}"
        )
    a = np.asarray(a.reshape(n, -1), dtype=np.float64)
    if a.shape[1] == 0:
        raise DataError(f"{where}: no target values (shape {a.shape})")
    _check_finite(a, where)
    return a


@dataclass(frozen=True)
class Labelled:
    """A Dataset made from in-memory data, and the original class labels (classification)."""

    dataset: Dataset
    classes: list | None


def from_memory(
    x,
    y,
    task: str,
    *,
    where: str = "x",
    classes: list | None = None,
    features: Sequence[str] | None = None,
) -> Labelled:
    """(x, y) as a Dataset: x of (samples, *shape) float64 kept flat, y class indices or
    (samples, outputs) float64. ``y`` may name the target column of a DataFrame or Table.
    ``classes``: the training classes, for a held-out part."""
    ywhere = "y" if where == "x" else f"{where} y"
    target_names = ["y"]
    if isinstance(y, str) and is_frame(x):
        if y not in [str(c) for c in _columns(x)]:
            raise DataError(
                f"{where}: no target column '{y}'; the columns are: "
                f"{', '.join(map(str, _columns(x)))}"
            )
        target_names, ywhere = [y], f"{where}: column '{y}'"
        column = x[y] if _module(x) == "pandas" else x.column(y)
        feats = from_frame(x, features, exclude=[y], where=where)
        y = column
    elif y is None:
        raise DataError(f"{where}: got x without y; expected the targets, y, beside it")
    elif is_frame(x):
        feats = from_frame(x, features, where=where)
    else:
        feats = from_array(x, where)
        if features is not None:
            raise DataError(f"{where}: features names columns, but x is an array, not a frame")
    if _module(y) == "pandas" and getattr(y, "name", None) is not None and target_names == ["y"]:
        target_names = [str(y.name)]
    return labelled(feats, y, target_names, task, where, ywhere, classes)


def labelled(
    feats: Features,
    y,
    target_names: list[str],
    task: str,
    where: str,
    ywhere: str,
    classes: list | None = None,
    held_out: bool = False,
) -> Labelled:
    """Features and their targets ``y`` (labels, or real targets) as a Labelled Dataset."""
    n = len(feats.x)
    if task == "classification":
        labels = labels_of(y, n, ywhere)
        yi, found = encode_labels(labels, ywhere, classes, held_out)
        found = [_py(c) for c in found]
        info = DataInfo(
            feats.x.shape[1],
            len(found),
            feats.names,
            target_names[:1],
            [str(c) for c in found],
            feats.shape,
        )
        return Labelled(Dataset(feats.x, yi, info, where), found)
    yr = regression_targets(y, n, ywhere)
    if yr.shape[1] > 1 and len(target_names) == 1:
        target_names = [f"{target_names[0]}{i}" for i in range(yr.shape[1])]
    info = DataInfo(feats.x.shape[1], yr.shape[1], feats.names, target_names, None, feats.shape)
    return Labelled(Dataset(feats.x, yr, info, where), None)
