"""``nnspec evaluate MODEL.onnx DATA [--target COL] [--json PATH]``: an exported model scored on
labelled data, in onnxruntime.

DATA is a CSV with a header (the model's feature columns by name, and the target column:
``--target``, else the model's own target name), an .npz (arrays x and y, or ``--target``
for y) or Parquet file(s). Classification prints the accuracy and the confusion matrix (rows:
true class, columns: predicted, in the model's class order); regression the MSE and R² of
each target and over all. ``--json PATH`` also writes them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import DataError


def add_parser(sub) -> None:
    from .device_options import add_device_arguments

    s = sub.add_parser(
        "evaluate",
        help="score an exported model on labelled data: accuracy and confusion matrix, or "
        "MSE and R²",
    )
    s.add_argument("model", help=".onnx file written by nnspec")
    s.add_argument("data", help="labelled data: .csv with a header, .npz, or .parquet")
    s.add_argument("--target", metavar="COL", help="the target column (.npz: array of targets)")
    s.add_argument("--json", metavar="PATH", help="also write the scores as JSON to PATH")
    add_device_arguments(s)
    s.set_defaults(func=evaluate_command)


def _labelled(path: Path, model, target: str | None):
    """(x, Dataset) of the labelled data, features picked by the model's names."""
    from ..data import core

    task = model.task
    name = str(path).lower()
    if name.endswith(".npz"):
        ds = core.load_npz(path, "x", target or "y", task, held_out=True)
        return ds
    names = model.target_names or []
    chosen = target or (names[0] if len(names) == 1 or task == "classification" else None)
    targets = chosen if chosen is not None else names
    if not targets:
        raise DataError(f"{path}: which column is the target? The model names none; give --target")
    features = model.feature_names
    if features and all(f.startswith("x") and f[1:].isdigit() for f in features):
        features = None  # generic names: the columns other than the target, in order
    if ".parquet" in name:
        from ..data.parquet import load_parquet

        return load_parquet(path, targets, features, task, held_out=True)
    return core.load_csv(path, targets, features, task, held_out=True)


def predict_raw_columns(model, path: Path):
    """A tabular model's raw columns read from ``path`` (CSV or Parquet) and its prediction:
    (columns, Prediction); a bad cell is named by the file's line and the column."""
    from nnspec_runtime.errors import ColumnError

    from ..data.predict_inputs import read_columns

    columns, lines = read_columns(path, model.feature_names)
    try:
        return columns, model.predict(columns)
    except ColumnError as e:
        where = f"{path}:{lines[e.row]}" if lines else f"{path}: row {e.row}"
        raise DataError(f"{where}: column '{e.column}': {e.detail}") from None


def _tabular(path: Path, model, target: str | None):
    """A tabular model's raw columns and the data's targets: (SimpleNamespace like a
    Dataset, the runtime's prediction)."""
    from types import SimpleNamespace

    from ..data import core, csv_table

    names = model.target_names or []
    chosen = target or (names[0] if names else None)
    if chosen is None:
        raise DataError(f"{path}: which column is the target? The model names none; give --target")
    _, pred = predict_raw_columns(model, path)
    if path.suffix == ".parquet":
        from ..data.parquet import read_table

        raw = read_table(path, [chosen]).column(chosen).to_pylist()
        texts = ["" if v is None else str(v) for v in raw]
        if model.task == "regression":
            y = np.asarray(raw, dtype=float).reshape(-1, 1)
    else:
        table = csv_table.read(path)
        (j,) = table.locate([chosen])
        texts = [table.text(r, j) for r in table.rows]
        if model.task == "regression":
            y = table.numbers([j])
    if model.task == "regression":
        info = SimpleNamespace(target_names=[chosen], class_names=None)
        return SimpleNamespace(y=y, info=info, source=str(path)), pred
    yi, classes = core._class_encode(texts, str(path), held_out=True)
    info = SimpleNamespace(class_names=classes, target_names=[chosen])
    return SimpleNamespace(y=yi, info=info, source=str(path)), pred


def _classification(model, ds, pred) -> dict:
    names = model.class_names
    index = {c: i for i, c in enumerate(names)}
    unknown = [c for c in ds.info.class_names if c not in index]
    if unknown:
        raise DataError(
            f"{ds.source}: label(s) {', '.join(map(repr, unknown[:5]))} are not classes of the "
            f"model; its classes are {names}"
        )
    truth = np.array([index[c] for c in ds.info.class_names], dtype=np.int64)[ds.y]
    guess = pred.label_indices
    k = len(names)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (truth, guess), 1)
    return {
        "task": "classification",
        "samples": int(len(truth)),
        "accuracy": float((truth == guess).mean()),
        "classes": list(names),
        "confusion_matrix": matrix.tolist(),
    }


def _regression(model, ds, pred) -> dict:
    y, out = ds.y, pred.values
    if y.shape[1] != out.shape[1]:
        raise DataError(
            f"{ds.source}: {y.shape[1]} target column(s), but the model predicts {out.shape[1]}"
        )
    mse = ((out - y) ** 2).mean(axis=0)
    var = y.var(axis=0)
    r2 = np.where(var > 0, 1 - mse / np.where(var > 0, var, 1), np.nan)
    total_var = ((y - y.mean(axis=0)) ** 2).sum()
    total = float(1 - ((out - y) ** 2).sum() / total_var) if total_var > 0 else None
    names = ds.info.target_names
    return {
        "task": "regression",
        "samples": int(len(y)),
        "mse": float(mse.mean()),
        "r2": total,
        "targets": {
            n: {"mse": float(m), "r2": None if np.isnan(r) else float(r)}
            for n, m, r in zip(names, mse, r2, strict=True)
        },
    }


def _print(scores: dict, model_path: str, data_path: str) -> None:
    n = scores["samples"]
    if scores["task"] == "regression":
        r2 = "undefined" if scores["r2"] is None else f"{scores['r2']:.4f}"
        print(f"{model_path} on {data_path}: {n} samples, mse {scores['mse']:.6g}, r2 {r2}")
        if len(scores["targets"]) > 1:
            for name, s in scores["targets"].items():
                r = "undefined" if s["r2"] is None else f"{s['r2']:.4f}"
                print(f"  {name}: mse {s['mse']:.6g}, r2 {r}")
        return
    right = round(scores["accuracy"] * n)
    print(
        f"{model_path} on {data_path}: {n} samples, accuracy {scores['accuracy']:.4f} "
        f"({right} of {n})"
    )
    names = [str(c) for c in scores["classes"]]
    width = max(len("true \\ predicted"), *(len(c) for c in names))
    cells = [[str(v) for v in row] for row in scores["confusion_matrix"]]
    cw = max(len(c) for c in names + [v for row in cells for v in row])
    print("confusion matrix (rows: true class, columns: predicted)")
    print("true \\ predicted".ljust(width) + "  " + "  ".join(c.rjust(cw) for c in names))
    for name, row in zip(names, cells, strict=True):
        print(name.ljust(width) + "  " + "  ".join(v.rjust(cw) for v in row))


def evaluate_command(args: argparse.Namespace) -> int:
    from .. import atomic
    from .device_options import open_model

    if args.json:
        atomic.check_writable(args.json)
    model = open_model(args)
    if getattr(model, "columns", None) is not None:  # a tabular model: raw columns by name
        ds, pred = _tabular(Path(args.data), model, args.target)
    else:
        ds = _labelled(Path(args.data), model, args.target)
        pred = model.predict(ds.x)
    if model.task == "classification":
        scores = _classification(model, ds, pred)
    else:
        scores = _regression(model, ds, pred)
    _print(scores, args.model, args.data)
    if args.json:
        atomic.write_text(args.json, json.dumps(scores, indent=2) + "\n")
    return 0
