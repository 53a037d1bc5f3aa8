"""Data: built-in datasets, CSV, NPZ and IDX files, deterministic (stratified) splits.

Everything here returns float64 inputs ``x`` of shape (samples, features) and targets ``y``:
class indices (samples,) int64 for classification, (samples, outputs) float64 for regression.
"""

from __future__ import annotations

import gzip
import io
import math
import zipfile
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from .. import untrusted
from ..errors import DataError
from . import csv_table, fast_csv, tabular


@dataclass(frozen=True)
class DataInfo:
    """What shape inference needs to know about a dataset, without its rows."""

    features: int
    outputs: int  # number of classes, or of regression targets
    feature_names: list[str]
    target_names: list[str]
    class_names: list[str] | None
    shape: tuple[int, ...] | None = None  # (channels, height, width) when rows are images
    encoding: str | None = None  # tabular data: "6 numeric + origin (3) = 9"
    # The validation split is given (in-memory or a `validation:` source), not cut from the
    # training data: early stopping then needs no validation_fraction.
    fixed_validation: bool = False


@dataclass(frozen=True)
class Dataset:
    """``x`` (samples, features) float64 as the network takes it, ``y`` the targets.

    Tabular data (``preprocess.categorical`` or ``impute``) also keeps its raw ``columns``
    (a column table, ``nnspec/data/tabular.py``), the file line of each row (``lines``, or
    None) and the ``encoder`` fitted on the training split that made ``x`` from them.
    """

    x: np.ndarray
    y: np.ndarray
    info: DataInfo
    source: str
    columns: dict[str, np.ndarray] | None = None
    lines: np.ndarray | None = None
    encoder: object | None = None  # a tabular.TabularEncoder

    def take(self, idx: np.ndarray) -> Dataset:
        columns = None if self.columns is None else tabular.take(self.columns, idx)
        lines = None if self.lines is None else self.lines[idx]
        return Dataset(
            self.x[idx], self.y[idx], self.info, self.source, columns, lines, self.encoder
        )


_IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
_DIGIT_CLASSES = [str(d) for d in range(10)]
_DIGITS28 = DataInfo(
    784,
    10,
    [f"pixel_{r}_{c}" for r in range(28) for c in range(28)],
    ["digit"],
    _DIGIT_CLASSES,
    (1, 28, 28),
)
BUILTIN_INFO = {
    "iris": DataInfo(
        4,
        3,
        ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        ["species"],
        _IRIS_CLASSES,
    ),
    "mcycle": DataInfo(1, 1, ["times"], ["accel"], None),
    "digits": DataInfo(
        64,
        10,
        [f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        ["digit"],
        _DIGIT_CLASSES,
        (1, 8, 8),
    ),
    "digits28": _DIGITS28,
    "mnist5k": _DIGITS28,  # real MNIST: the same 28x28 pixels and ten digits
}


def _resource_bytes(name: str) -> bytes:
    return resources.files("nnspec.data.datasets").joinpath(name).read_bytes()


def _bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) matrix R with R @ v = v resampled at n_out pixel centres, linearly."""
    r = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = min(max((i + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1.0)
        lo = int(math.floor(src))
        hi = min(lo + 1, n_in - 1)
        frac = src - lo
        r[i, lo] += 1.0 - frac
        r[i, hi] += frac
    return r


@cache
def _builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name in ("digits", "digits28"):
        raw = np.loadtxt(
            io.BytesIO(gzip.decompress(_resource_bytes("digits.csv.gz"))), delimiter=","
        )
        x, y = raw[:, :64], raw[:, 64].astype(np.int64)
        if name == "digits28":
            r = _bilinear_matrix(28, 8)
            # Separable upscaling: each image I (8x8) becomes R I R^T (28x28).
            x = np.einsum("ij,njk,lk->nil", r, x.reshape(-1, 8, 8), r).reshape(-1, 784)
        return x, y
    if name == "mnist5k":
        # 5,000 real MNIST digits (see datasets/README.md): 784 pixels 0..255, then the label.
        raw = np.loadtxt(
            io.BytesIO(gzip.decompress(_resource_bytes("mnist_5k.csv.gz"))),
            delimiter=",",
            dtype=np.float64,
        )
        return raw[:, :784], raw[:, 784].astype(np.int64)
    table = csv_table.parse(_resource_bytes(f"{name}.csv").decode(), f"builtin:{name}")
    if name == "iris":
        x = table.numbers(range(4))
        y = np.array([_IRIS_CLASSES.index(table.text(r, 4)) for r in table.rows], dtype=np.int64)
        return x, y
    data = table.numbers(range(table.width))
    return data[:, :1], data[:, 1:]


def select_features(info: DataInfo, features: list[str] | None, where: str) -> list[int]:
    """Column indices of ``features`` (all when None), or an error listing the names."""
    if features is None:
        return list(range(info.features))
    unknown = [f for f in features if f not in info.feature_names]
    if unknown:
        shown = ", ".join(info.feature_names[:8]) + (", ..." if info.features > 8 else "")
        raise DataError(
            f"{where}: unknown feature(s) {', '.join(unknown)}; the features are: {shown}"
        )
    return [info.feature_names.index(f) for f in features]


def builtin_info(name: str, features: list[str] | None, task: str) -> DataInfo:
    info = BUILTIN_INFO[name]
    cols = select_features(info, features, f"builtin:{name}")
    names = [info.feature_names[c] for c in cols]
    # A subset of the pixels is no longer an image.
    shape = info.shape if features is None else None
    if task == "regression" and info.class_names is not None:
        return DataInfo(len(cols), 1, names, info.target_names, None, shape)
    return DataInfo(len(cols), info.outputs, names, info.target_names, info.class_names, shape)


def load_builtin(name: str, features: list[str] | None = None, task: str = "") -> Dataset:
    info = builtin_info(name, features, task)
    x, y = _builtin(name)
    cols = [BUILTIN_INFO[name].feature_names.index(f) for f in info.feature_names]
    if info.class_names is None and y.ndim == 1:  # class indices used as a regression target
        y = y.reshape(-1, 1).astype(np.float64)
    return Dataset(x[:, cols].copy(), y.copy(), info, f"builtin:{name}")


def _class_encode(
    labels: list[str], where: str, held_out: bool = False
) -> tuple[np.ndarray, list[str]]:
    """Labels -> indices into the sorted class names (numeric labels sort numerically).
    ``held_out``: a fixed validation or test part, which may hold a single class."""
    unique = sorted(set(labels))
    try:
        unique = sorted(unique, key=float)
    except ValueError:
        pass
    if len(unique) < 2 and not held_out:
        raise DataError(f"{where}: expected at least 2 classes in the target, found {unique}")
    index = {c: i for i, c in enumerate(unique)}
    return np.array([index[v] for v in labels], dtype=np.int64), unique


def _bad_label(label: str) -> str | None:
    """What a cell that cannot be a class label holds (a missing value in disguise), or None."""
    if not label:
        return "an empty cell (a missing value?)"
    try:
        value = float(label)
    except ValueError:
        return None
    if not math.isfinite(value):
        return f"{label!r}, a NaN or inf (a missing value?)"
    return None


def load_csv(
    path: Path,
    target: str | list[str],
    features: list[str] | None,
    task: str,
    plan: tabular.TabularPlan | None = None,
    *,
    held_out: bool = False,
) -> Dataset:
    """Read a CSV with a header row. Errors name the file, row and column.

    With a tabular ``plan`` (its ``features`` are filled in here), the features come back as
    raw ``columns`` (categories as text, missing numbers as NaN where imputed) and ``x`` is
    (samples, 0) until an encoder fitted on the training split encodes them.

    Without one, a plain numeric file (class labels may be text) is parsed by NumPy in C
    (``fast_csv``); any other, and any file with a mistake in it, by the located reader,
    which says where the mistake is. ``held_out``: a fixed validation or test part, which may
    hold a single class.
    """
    targets = [target] if isinstance(target, str) else list(target)
    if plan is None:
        label = targets[0] if task == "classification" else None
        fast = fast_csv.read_numeric(path, label)
        if fast is not None:
            return _from_numeric(fast, path, targets, features, task, held_out)
    table = csv_table.read(path)
    feats = features or [h for h in table.header if h not in targets]
    # Every column used must be in the header, once, with a name: a duplicated 'a' would
    # otherwise be read twice from its first column.
    hint = "or list the features to use in data.features"
    cols = table.locate(targets + feats, hint)
    if not feats:
        raise DataError(
            f"{path}:{table.header_line}: no feature columns left besides the target {targets}"
        )
    tcols, fcols = cols[: len(targets)], cols[len(targets) :]
    columns = None
    if plan is None:
        x = table.numbers(fcols)
    else:
        plan = plan.with_features(feats)
        columns = tabular.columns_from_table(table, plan, fcols)
        x = np.zeros((len(table.rows), 0))
    if task == "classification":
        labels = [table.text(row, tcols[0]) for row in table.rows]
        for row, label in zip(table.rows, labels, strict=True):
            why = _bad_label(label)
            if why:
                raise DataError(
                    f"{path}:{row.line}: column '{targets[0]}': expected a class label, got {why}"
                )
        y, classes = _class_encode(labels, str(path), held_out)
        info = DataInfo(len(feats), len(classes), feats, targets[:1], classes)
    else:
        y = table.numbers(tcols)
        info = DataInfo(len(feats), len(tcols), feats, targets, None)
    if columns is not None:
        return Dataset(x, y, info, str(path), columns, table.lines)
    return Dataset(x, y, info, str(path))


def _from_numeric(fast, path: Path, targets, features, task: str, held_out: bool) -> Dataset:
    """``load_csv`` of a file that the fast path read: the same checks of the header, the
    same Dataset."""
    table = fast.header
    feats = features or [h for h in table.header if h not in targets]
    cols = table.locate(targets + feats, "or list the features to use in data.features")
    if not feats:
        raise DataError(
            f"{path}:{table.header_line}: no feature columns left besides the target {targets}"
        )
    tcols, fcols = cols[: len(targets)], cols[len(targets) :]
    x = fast_csv.columns(fast.values, fcols)
    if task == "classification":
        y, classes = _class_encode(fast.labels, str(path), held_out)
        info = DataInfo(len(feats), len(classes), feats, targets[:1], classes)
    else:
        y = np.ascontiguousarray(fast_csv.columns(fast.values, tcols))
        info = DataInfo(len(feats), len(tcols), feats, targets, None)
    return Dataset(x, y, info, str(path))


# Array kinds that hold real numbers: bool, signed and unsigned integers, floats. Not complex
# (c), timedelta (m, which NumPy counts as an integer), datetime (M), strings, objects, records.
_REAL = "biuf"
_KINDS = {
    "c": "complex numbers; expected real ones",
    "m": "time spans; expected plain numbers",
    "M": "dates; expected plain numbers",
    "U": "strings; expected numbers",
    "S": "byte strings; expected numbers",
    "V": "records (a structured array); expected plain numbers",
    "O": "Python objects; expected numbers",
}


def _kind(a: np.ndarray) -> str:
    return f"{a.dtype} ({_KINDS.get(a.dtype.kind, 'expected numbers')})"


def _read_npz_arrays(path: Path, xkey: str, ykey: str) -> tuple[np.ndarray, np.ndarray]:
    """The two arrays, through the untrusted-input layer: entries checked by name and declared
    size before anything is decompressed (a deflate bomb is refused), headers before
    allocating, no pickle; the archive's other arrays are never decompressed."""
    if path.is_file() and not zipfile.is_zipfile(path):
        try:
            with untrusted.open_regular(path, "data file") as f:
                magic = f.read(6)
        except DataError:
            magic = b""
        if magic == b"\x93NUMPY":
            raise DataError(f"{path}: a single .npy array, not an .npz archive of named arrays")
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: data file not found")
    arrays = untrusted.read_npz(path, str(path), DataError, keys=dict.fromkeys((xkey, ykey)))
    return arrays[xkey], arrays[ykey]


def load_npz(path: Path, xkey: str, ykey: str, task: str, held_out: bool = False) -> Dataset:
    x, y = _read_npz_arrays(path, xkey, ykey)
    if x.ndim not in (2, 3, 4):
        raise DataError(
            f"{path}: array '{xkey}': expected numbers of shape (samples, features), "
            f"(samples, height, width) or (samples, channels, height, width), "
            f"got {x.dtype} of shape {x.shape}"
        )
    if x.dtype.kind not in _REAL:
        raise DataError(f"{path}: array '{xkey}': expected real numbers, got {_kind(x)}")
    if x.size == 0:
        what = "sample" if len(x) == 0 else "feature"
        raise DataError(
            f"{path}: array '{xkey}' of shape {x.shape} is empty; expected at least one {what}"
        )
    # Images: one channel when none is given (NCHW, as ONNX Conv takes them); rows are kept
    # flat like every other source, and the network reshapes them to `shape`.
    shape = None if x.ndim == 2 else (1, *x.shape[1:]) if x.ndim == 3 else tuple(x.shape[1:])
    x = x.reshape(len(x), -1)
    if y.ndim == 0 or len(y) != len(x):
        raise DataError(
            f"{path}: array '{ykey}': expected {len(x)} targets like '{xkey}', got shape {y.shape}"
        )
    untrusted.check_allocation(x.size * 8, f"{path}: array '{xkey}' as float64")
    x = x.astype(np.float64)
    _check_finite(x, path, xkey)
    feats = [f"x{i}" for i in range(x.shape[1])]
    if task == "classification":
        if y.ndim != 1:
            raise DataError(
                f"{path}: array '{ykey}': expected class labels of shape (samples,), "
                f"got shape {y.shape}"
            )
        if y.dtype.kind not in _REAL + "US":
            raise DataError(
                f"{path}: array '{ykey}': expected class labels (integers or strings), "
                f"got {_kind(y)}"
            )
        labels = [str(v) for v in y.tolist()]
        for i, label in enumerate(labels):
            why = _bad_label(label.strip())
            if why:
                raise DataError(
                    f"{path}: array '{ykey}' at index {i}: expected a class label, got {why}"
                )
        yi, classes = _class_encode(labels, f"{path}: array '{ykey}'", held_out)
        info = DataInfo(x.shape[1], len(classes), feats, [ykey], classes, shape)
        return Dataset(x, yi, info, str(path))
    if y.dtype.kind not in _REAL:
        raise DataError(
            f"{path}: array '{ykey}': expected numeric regression targets, got {_kind(y)}"
        )
    y = y.reshape(len(y), -1).astype(np.float64)
    if y.shape[1] == 0:
        raise DataError(f"{path}: array '{ykey}': no target values (shape {y.shape})")
    _check_finite(y, path, ykey)
    targets = [ykey] if y.shape[1] == 1 else [f"{ykey}{i}" for i in range(y.shape[1])]
    return Dataset(x, y, DataInfo(x.shape[1], y.shape[1], feats, targets, None, shape), str(path))


def load_idx(images: Path, labels: Path, task: str, held_out: bool = False) -> Dataset:
    """Images and labels from two IDX files (the MNIST format): x of (samples, channels *
    height * width) kept flat like every other source, with its image shape in the info."""
    from .idx import read_idx_pair

    x, y = read_idx_pair(images, labels)
    shape = tuple(x.shape[1:])
    x = x.reshape(len(x), -1)
    c, h, w = shape
    if c == 1:
        feats = [f"pixel_{r}_{k}" for r in range(h) for k in range(w)]
    else:
        feats = [f"x{i}" for i in range(x.shape[1])]
    if task == "classification":
        yi, classes = _class_encode([str(v) for v in y.tolist()], str(labels), held_out)
        info = DataInfo(x.shape[1], len(classes), feats, ["label"], classes, shape)
        return Dataset(x, yi, info, str(images))
    yr = y.reshape(-1, 1).astype(np.float64)
    return Dataset(x, yr, DataInfo(x.shape[1], 1, feats, ["label"], None, shape), str(images))


def _check_finite(a: np.ndarray, path: Path, key: str) -> None:
    # float32 range too: the model runs in float32, where 1e39 is inf.
    untrusted.check_finite(a, f"{path}: array '{key}'", DataError, float32=True)


def split(
    n: int, y: np.ndarray | None, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out), held_out about ``fraction`` of n; stratified when ``y`` given.

    Stratifying per class keeps a small class (iris has 50 of each) represented in both parts.
    """
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if y is not None else [np.arange(n)]
    held = []
    for g in groups:
        g = rng.permutation(g)
        held.append(g[: int(round(fraction * len(g)))])
    held_idx = np.sort(np.concatenate(held)) if held else np.arange(0)
    keep = np.setdiff1d(np.arange(n), held_idx)
    if len(keep) == 0 or len(held_idx) == 0:
        part = "held-out part" if len(held_idx) == 0 else "remaining part"
        raise DataError(
            f"{fraction} of {n} samples leaves the {part} empty; expected a fraction that "
            "keeps samples on both sides"
        )
    return keep, held_idx
