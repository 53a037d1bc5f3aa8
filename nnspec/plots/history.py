"""``nnspec plot history METRICS.json``: loss and metric per epoch, training vs validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .. import untrusted
from ..errors import DataError
from .common import DPI, figure, require_matplotlib

TRAIN_COLOUR, VAL_COLOUR, TEST_COLOUR = "#1f77b4", "#ff7f0e", "#2ca02c"
# The second panel's metric, by preference: what the task reports, in its own units.
METRICS = (("accuracy", "accuracy"), ("r2", "R²"), ("mse", "mean squared error"))


def read_metrics(path: str | Path) -> dict:
    """The metrics JSON that ``nnspec train --metrics`` writes, checked for its history."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a metrics .json file")
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: no such file")
    data = untrusted.read_bytes(path, "metrics file", DataError, limit=2**28)
    try:
        metrics = json.loads(data.decode("utf-8"))  # NaN allowed: nnspec writes null, not all
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise DataError(
            f"{path}: not readable as JSON ({str(e)[:200]}); expected the metrics JSON that "
            "nnspec train --metrics writes"
        ) from None
    history = metrics.get("history") if isinstance(metrics, dict) else None
    if not isinstance(history, list) or not history or not isinstance(history[0], dict):
        raise DataError(
            f"{path}: no training history; expected the metrics JSON that nnspec train "
            "--metrics writes (with a non-empty 'history' list of epochs)"
        )
    for i, row in enumerate(history):
        if not isinstance(row, dict):
            raise DataError(
                f"{path}: history[{i}] is {type(row).__name__} {json.dumps(row)[:40]}; "
                "expected an object of one epoch's numbers"
            )
    test, best = metrics.get("test"), metrics.get("best_epoch")
    if test is not None and not isinstance(test, dict):
        raise DataError(f"{path}: test is {type(test).__name__}; expected an object of scores")
    if best is not None and (not isinstance(best, int) or isinstance(best, bool)):
        raise DataError(f"{path}: best_epoch is {best!r:.40}; expected an epoch number")
    return metrics


def _number(v) -> float | None:
    """A finite number from JSON (ints beyond a float's range and bools are not), else None."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        v = float(v)
    except OverflowError:
        return None
    return v if math.isfinite(v) else None


def _series(history: list[dict], key: str) -> tuple[list[int], list[float]] | None:
    """Epochs and values of ``key`` where recorded and finite (an undefined R² is null)."""
    points = [
        (row["epoch"] if isinstance(row.get("epoch"), int) else i + 1, _number(row[key]))
        for i, row in enumerate(history)
        if _number(row.get(key)) is not None
    ]
    if not points:
        return None
    epochs, values = zip(*points, strict=True)
    return list(epochs), list(values)


def _mark(ax, epoch: int | None, text: str | None) -> None:
    if epoch is not None:
        ax.axvline(epoch, color="0.35", linestyle="--", linewidth=1, label=text)


def plot_history(metrics: dict | str | Path, dpi: float = DPI):
    """Figure with a loss panel and, when the history has one, a metric panel (accuracy, R²
    or MSE), each with the training and validation curves, the epoch whose weights were kept
    (early stopping's best epoch) or else the lowest validation loss, and the test score."""
    require_matplotlib()
    if not isinstance(metrics, dict):
        metrics = read_metrics(metrics)
    history = metrics["history"]
    metric = next(((k, name) for k, name in METRICS if _series(history, k)), None)
    fig = figure(10 if metric else 5.5, 4, dpi)
    axes = fig.subplots(1, 2 if metric else 1, squeeze=False)[0]

    best, best_text = metrics.get("best_epoch"), None
    if best is not None:
        best_text = f"best epoch {best} (weights kept)"
    elif (val := _series(history, "val_loss")) is not None:
        best = val[0][min(range(len(val[1])), key=val[1].__getitem__)]
        best_text = f"lowest validation loss (epoch {best})"
    test = metrics.get("test") or {}

    panels = [("loss", "loss")] + ([metric] if metric else [])
    for ax, (key, name) in zip(axes, panels, strict=True):
        for prefix, colour, what in (
            ("", TRAIN_COLOUR, "training"),
            ("val_", VAL_COLOUR, "validation"),
        ):
            s = _series(history, prefix + key)
            if s is not None:
                ax.plot(*s, color=colour, linewidth=1.5, label=what)
        if (score := _number(test.get(key))) is not None:
            shown = f"test {score:.4g}"
            ax.axhline(score, color=TEST_COLOUR, linestyle=":", linewidth=1.5, label=shown)
        _mark(ax, best, best_text)
        values = [v for p in ("", "val_") if (s := _series(history, p + key)) for v in s[1]]
        # A loss that falls by decades reads better on a log scale; R² and accuracy do not.
        if key in ("loss", "mse") and min(values) > 0 and max(values) / min(values) > 30:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name[0].upper() + name[1:])
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    title = f"{metrics.get('spec', 'model')}: {len(history)} epochs"
    if metrics.get("stopped_early"):
        title += ", stopped early"
    if _series(history, "val_loss") is None:
        title += " (no validation split)"
    fig.suptitle(title)
    return fig
