"""The training loop: epochs of shuffled minibatches, metrics, early stopping."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..data import Dataset
from ..errors import NnspecError
from ..network import Network
from .optimizers import OPTIMIZERS
from .schedules import learning_rate


class TrainingError(NnspecError):
    """Training cannot go on (the loss diverged)."""


@dataclass
class History:
    """One dict per epoch: epoch, lr, loss and metric (train), val_* (validation), seconds."""

    epochs: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None

    @property
    def epochs_run(self) -> int:
        return len(self.epochs)


def regression_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """MSE and R^2 (averaged uniformly over outputs), in the target's own units."""
    y = y.reshape(len(y), -1).astype(np.float64)
    pred = pred.reshape(len(pred), -1).astype(np.float64)
    mse = float(np.mean((pred - y) ** 2))
    ss_res = ((y - pred) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return {"mse": mse, "r2": r2_score(ss_res, ss_tot)}


def r2_score(ss_res: np.ndarray, ss_tot: np.ndarray) -> float:
    """Mean over outputs of 1 - SS_res / SS_tot; NaN where no output varies (R^2 undefined)."""
    varies = ss_tot > 0
    if not varies.any():
        return float("nan")
    return float(np.mean(1 - ss_res[varies] / ss_tot[varies]))


def evaluate(network: Network, data: Dataset) -> dict[str, float]:
    """Loss (scaled targets as trained, without the L2 term) and the task's metrics, from one
    forward pass over the whole split."""
    t = network.targets(data.y)
    out, loss, _ = network.forward_loss(network.scale_x(data.x), t)
    metrics = {"loss": loss}
    if network.task == "classification":
        metrics["accuracy"] = _count_correct(out, t) / len(out)
    else:
        metrics.update(regression_metrics(out * network.y_scale + network.y_mean, data.y))
    return metrics


def _better(monitor: str, new: float, best: float | None, min_delta: float) -> bool:
    if best is None:
        return True
    if monitor in ("val_loss", "val_mse"):
        return new < best - min_delta
    return new > best + min_delta


def fit(
    network: Network,
    train: Dataset,
    val: Dataset | None,
    *,
    progress: bool | None = None,
) -> History:
    """Train ``network`` in place on ``train``; validate on ``val`` after every epoch."""
    cfg = network.spec.train
    # Frozen layers (trainable: false) are left out: the optimizer never touches them.
    params, grads = network.trainable_parameters(), network.trainable_gradients()
    # Early stopping restores everything the model stores, batchnorm statistics included.
    saved = network.arrays()
    optimizer = OPTIMIZERS[cfg.optimizer.kind](cfg.optimizer, params)
    shuffle_rng = np.random.default_rng([cfg.seed, 2])
    xs, t = network.scale_x(train.x), network.targets(train.y)
    if network.task == "regression":
        y = train.y.reshape(len(train.y), -1)
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    n, bs = len(xs), min(cfg.batch_size, len(xs))
    es = cfg.early_stopping
    history = History()
    best_value, best_params, waited = None, None, 0

    show = sys.stderr.isatty() if progress is None else progress
    epochs = range(cfg.epochs)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(epochs, desc=network.spec.name, unit="epoch", file=sys.stderr, leave=True)
        epochs = bar
    for epoch in epochs:
        start = time.perf_counter()
        lr = learning_rate(cfg.lr_schedule, cfg.optimizer.lr, epoch, cfg.epochs)
        optimizer.lr = lr
        order = shuffle_rng.permutation(n) if cfg.shuffle else np.arange(n)
        total_loss, correct = 0.0, 0
        sq_err = np.zeros(t.shape[1]) if network.task == "regression" else None
        for b, lo in enumerate(range(0, n, bs)):
            idx = order[lo : lo + bs]
            xb, tb = xs[idx], t[idx]
            # Overflow shows up as a non-finite loss, reported below with its position.
            with np.errstate(over="ignore", invalid="ignore"):
                loss, out = network.backprop(xb, tb)
            if not np.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss} at epoch {epoch + 1}, batch {b + 1}: training "
                    f"diverged. Try a smaller train.optimizer.lr (now {lr:g}), standardized "
                    "inputs (preprocess.standardize: true), or another initializer"
                )
            optimizer.step(params, grads)
            total_loss += loss * len(idx)
            if network.task == "classification":
                correct += _count_correct(out, tb)
            else:
                sq_err += np.sum((out - tb) ** 2, axis=0)
        row = {"epoch": epoch + 1, "lr": lr, "loss": total_loss / n}
        if network.task == "classification":
            row["accuracy"] = correct / n
        else:
            # Accumulated during the epoch (the weights move meanwhile, as for the loss), then
            # brought back to the target's own units: a squared error scales by y_scale^2.
            row.update(
                _running_regression(sq_err * network.y_scale.astype(np.float64) ** 2, ss_tot, n)
            )
        if val is not None:
            row.update({f"val_{k}": v for k, v in evaluate(network, val).items()})
        row["seconds"] = time.perf_counter() - start
        history.epochs.append(row)
        if bar is not None:
            shown = {
                k: f"{row[k]:.4g}"
                for k in ("loss", "accuracy", "r2", "val_loss", "val_accuracy", "val_r2")
                if k in row
            }
            bar.set_postfix(shown)
        if es is not None and val is not None:
            if _better(es.monitor, row[es.monitor], best_value, es.min_delta):
                best_value, waited = row[es.monitor], 0
                best_params = {k: v.copy() for k, v in saved.items()}
                history.best_epoch = epoch + 1
            else:
                waited += 1
                if waited >= es.patience:
                    history.stopped_early = True
                    break
    if bar is not None:
        bar.close()
    if best_params is not None:
        for k, v in saved.items():
            v[...] = best_params[k]
    return history


def _running_regression(ss_res: np.ndarray, ss_tot: np.ndarray, n: int) -> dict[str, float]:
    return {"mse": float(ss_res.sum() / (n * len(ss_res))), "r2": r2_score(ss_res, ss_tot)}


def _count_correct(out: np.ndarray, t: np.ndarray) -> int:
    if t.ndim == 1:  # class indices
        return int(np.sum(out.argmax(axis=1) == t))
    if t.shape[1] == 1:  # one logistic unit
        return int(np.sum((out[:, 0] > 0.5) == (t[:, 0] > 0.5)))
    return int(np.sum(out.argmax(axis=1) == t.argmax(axis=1)))
