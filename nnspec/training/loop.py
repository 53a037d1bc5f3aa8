"""The training loop: epochs of shuffled minibatches, metrics, early stopping."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..data.core import Dataset
from ..errors import NnspecError
from ..nn.network import Network
from ..nn.numeric import ones
from . import checkpoint as ckpt
from .interrupt import StopRequest, TrainingInterrupted
from .optimizers import FLUSH_EVERY, OPTIMIZERS
from .schedules import learning_rate
from .state import History, LoopState

# Training splits up to this size are gathered in shuffled order once per epoch (a copy);
# larger ones are gathered batch by batch.
PRESHUFFLE_BYTES = 2**28


class TrainingError(NnspecError):
    """Training cannot go on (a loss or gradient is no longer finite)."""


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
    checkpoint_dir: str | Path | None = None,
    resume: ckpt.Checkpoint | None = None,
    stop: StopRequest | None = None,
    on_batch: Callable[[int, int], object] | None = None,
    on_epoch: Callable[[dict], object] | None = None,
) -> History:
    """Train ``network`` in place on ``train``; validate on ``val`` after every epoch.

    checkpoint_dir: where checkpoints go: every ``train.checkpoint_every`` epochs, when
        ``stop`` is set, and (the last good state) when training diverges. None: none.
    resume: a loaded checkpoint to go on from; the result is bit-identical to a run that was
        never interrupted.
    stop: once set (by a signal handler or a test), training ends after the current batch:
        a checkpoint is written to ``checkpoint_dir`` and ``TrainingInterrupted`` raised.
    on_batch: called as ``on_batch(epoch, batch)`` (both counted from 0) after each step.
    on_epoch: called with each epoch's history row (as ``History.epochs`` holds it) once the
        epoch, its validation and early stopping's bookkeeping are done.

    Raises ``TrainingError`` when a loss or gradient is not finite; the weights are then those
    after the last good step.
    """
    run = _Run(network, train, val, checkpoint_dir, stop, on_batch)
    if resume is not None:
        try:
            run.restore(resume)
        except BaseException:
            if run.owner is not None:
                run.owner.release()
            raise
    epochs = network.spec.train.epochs
    bar = None
    if sys.stderr.isatty() if progress is None else progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=epochs,
            initial=run.state.epoch,
            desc=network.spec.name,
            unit="epoch",
            file=sys.stderr,
            leave=True,
        )
    try:
        for epoch in range(run.state.epoch, epochs):
            run.run_epoch(epoch)
            row = run.end_epoch(epoch)
            if on_epoch is not None:
                on_epoch(row)
            if bar is not None:
                # refresh=False: update() redraws at tqdm's own pace; forcing a redraw every
                # epoch costs more than an epoch of a small network.
                bar.set_postfix(
                    {short: f"{row[k]:.3g}" for k, short in _SHOWN.items() if k in row},
                    refresh=False,
                )
                bar.update(1)
            if run.history.stopped_early:
                if bar is not None:  # end the bar at 100%: the run is complete, not cut short
                    bar.total = bar.n
                    bar.refresh()
                break
            if epoch + 1 < epochs:
                run.between_epochs(epoch)
    finally:
        if bar is not None:
            bar.close()
        if run.owner is not None:
            run.owner.release()
    run.restore_best()
    return run.history


# Short names keep the bar itself visible on an 80-column terminal.
_SHOWN = {
    "loss": "loss",
    "accuracy": "acc",
    "r2": "r2",
    "val_loss": "val_loss",
    "val_accuracy": "val_acc",
    "val_r2": "val_r2",
}


class _Run:
    """One training run's moving parts; ``fit`` drives it epoch by epoch.

    Everything that changes while training lives in the network's arrays, the optimizer,
    ``shuffle_rng``, the layers' RNGs and ``state`` (a ``LoopState``): exactly what a
    checkpoint stores.
    """

    def __init__(
        self,
        network: Network,
        train: Dataset,
        val: Dataset | None,
        checkpoint_dir: str | Path | None,
        stop: StopRequest | None,
        on_batch: Callable[[int, int], object] | None,
    ):
        cfg = network.spec.train
        self.network, self.val, self.cfg = network, val, cfg
        self.owner = None
        if checkpoint_dir is not None:
            checkpoint_dir = ckpt.prepare_checkpoint_directory(checkpoint_dir)
            self.owner = ckpt.DirectoryOwner(checkpoint_dir)  # for the whole run
        self.checkpoint_dir, self.stop, self.on_batch = checkpoint_dir, stop, on_batch
        self.train = train
        # Frozen layers (trainable: false) are left out: the optimizer never touches them.
        # Packed: one flat buffer each, so that a step is a few NumPy calls (packing.py).
        self.params, self.grads = network.pack_trainable()
        self.grad_arrays = [self.grads.flat]
        self.lowest = network.lowest_trainable()
        # Early stopping restores everything the model stores, running statistics included.
        self.saved = network.arrays()
        # Arrays and RNGs that a training forward pass changes (running statistics, the
        # generators of random masks): put back when a batch diverges, so its step is never
        # taken.
        self.forward_state = list(network.state().values())
        self.layer_rngs = list(ckpt.layer_rngs(network).values())
        self.optimizer = OPTIMIZERS[cfg.optimizer.kind](cfg.optimizer, self.params)
        self.shuffle_rng = np.random.default_rng([cfg.seed, 2])
        self.n = len(train.x)
        self.bs = min(cfg.batch_size, self.n)
        self.batches = -(-self.n // self.bs)
        self.state = LoopState(History())
        self.parts = ckpt.RunParts(
            network, self.optimizer, self.shuffle_rng, self.state, self.batches, self.n
        )
        self._scale()

    @property
    def history(self) -> History:
        return self.state.history

    def _scale(self) -> None:
        """Scaled inputs and targets of the training split; redone after a restore, which
        brings the checkpoint's preprocessing statistics."""
        net, train = self.network, self.train
        self.xs, self.t = net.scale_x(train.x), net.targets(train.y)
        self.epoch_xs = self.epoch_t = None
        if net.task == "regression":
            y = train.y.reshape(len(train.y), -1)
            self.ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)

    def restore(self, resume: ckpt.Checkpoint) -> None:
        ckpt.restore(resume, self.parts)
        self._scale()

    # -- one epoch -------------------------------------------------------------------------
    def run_epoch(self, epoch: int) -> None:
        """The epoch's remaining batches (all of them unless resuming in its middle)."""
        st = self.state
        self.started = time.perf_counter()
        self.optimizer.lr = self.lr = learning_rate(
            self.cfg.lr_schedule, self.cfg.optimizer.lr, epoch, self.cfg.epochs
        )
        if st.order is None:  # a fresh epoch, not one resumed in its middle
            shuffle = self.cfg.shuffle
            st.order = self.shuffle_rng.permutation(self.n) if shuffle else np.arange(self.n)
            st.batch, st.total_loss, st.correct, st.seconds = 0, 0.0, 0, 0.0
            if self.network.task == "regression":
                st.sq_err = np.zeros(self.t.shape[1])
        if self.xs.nbytes <= PRESHUFFLE_BYTES:
            # One gather of the whole split per epoch, then every batch is a slice (a view):
            # cheaper than a gather per batch, with the very same batches.
            self.epoch_xs, self.epoch_t = self.xs[st.order], self.t[st.order]
        # Overflow shows up as a non-finite loss or gradient, reported with its position.
        with np.errstate(over="ignore", invalid="ignore"):
            for b in range(st.batch, self.batches):
                self._step(epoch, b)
                st.batch = b + 1
                if self.on_batch is not None:
                    self.on_batch(epoch, b)
                if self.stop:
                    self._interrupt()
        self.epoch_xs = self.epoch_t = None

    def _step(self, epoch: int, b: int) -> None:
        """Forward, backward, checks, clipping and the optimizer step on batch ``b``."""
        st, net = self.state, self.network
        rows = slice(b * self.bs, (b + 1) * self.bs)
        if self.epoch_xs is not None:
            xb, tb = self.epoch_xs[rows], self.epoch_t[rows]
        else:
            idx = st.order[rows]
            xb, tb = self.xs[idx], self.t[idx]
        undo = self._undo_point()
        loss, out = net.backprop(xb, tb, self.lowest)
        norm = grad_norm(self.grad_arrays) if math.isfinite(loss) else math.nan
        if not math.isfinite(norm):
            self._undo(undo)
            raise self._diverged(epoch, b, loss)
        if self.cfg.clip_grad_norm is not None:
            clip_grad_norm(self.grad_arrays, self.cfg.clip_grad_norm, norm)
        self.optimizer.step(self.params, self.grads)
        if (epoch * self.batches + b + 1) % FLUSH_EVERY == 0:
            self.optimizer.flush()
        st.total_loss += loss * len(xb)
        if net.task == "classification":
            st.correct += _count_correct(out, tb)
        else:
            d = out - tb
            d *= d
            st.sq_err += ones(len(d), d.dtype) @ d  # column sums, as one BLAS call

    def end_epoch(self, epoch: int) -> dict:
        """The epoch's history row (train metrics from the running sums, then validation),
        and early stopping's bookkeeping. Returns the row."""
        st, net, n = self.state, self.network, self.n
        row = {"epoch": epoch + 1, "lr": self.lr, "loss": st.total_loss / n}
        if net.task == "classification":
            row["accuracy"] = st.correct / n
        else:
            # Accumulated during the epoch (the weights move meanwhile, as for the loss), then
            # brought back to the target's own units: a squared error scales by y_scale^2.
            sq = st.sq_err * net.y_scale.astype(np.float64) ** 2
            row.update(_running_regression(sq, self.ss_tot, n))
        if self.val is not None:
            row.update({f"val_{k}": v for k, v in evaluate(net, self.val).items()})
        row["seconds"] = st.seconds + time.perf_counter() - self.started
        self.history.epochs.append(row)
        self._early_stopping(epoch, row)
        st.epoch, st.batch, st.order, st.sq_err = epoch + 1, 0, None, None
        return row

    def _early_stopping(self, epoch: int, row: dict) -> None:
        es, st = self.cfg.early_stopping, self.state
        if es is None or self.val is None:
            return
        if _better(es.monitor, row[es.monitor], st.best_value, es.min_delta):
            st.best_value, st.waited = row[es.monitor], 0
            st.best_arrays = {k: v.copy() for k, v in self.saved.items()}
            self.history.best_epoch = epoch + 1
        else:
            st.waited += 1
            if st.waited >= es.patience:
                self.history.stopped_early = True

    def between_epochs(self, epoch: int) -> None:
        """After a finished epoch that is not the last: the periodic checkpoint, and a stop
        requested while the epoch's validation ran."""
        every = self.cfg.checkpoint_every
        if self.stop:
            self._interrupt()
        if every and self.checkpoint_dir is not None and (epoch + 1) % every == 0:
            self._save("periodic")

    def restore_best(self) -> None:
        if self.state.best_arrays is not None:
            for k, v in self.saved.items():
                v[...] = self.state.best_arrays[k]

    # -- faults ----------------------------------------------------------------------------
    def _save(self, reason: str) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        if self.state.order is not None:  # time spent so far on an unfinished epoch
            self.state.seconds += time.perf_counter() - self.started
            self.started = time.perf_counter()
        return ckpt.write_checkpoint(self.checkpoint_dir, self.parts, reason=reason)

    def _interrupt(self) -> None:
        """Checkpoint the state after the batch just done, then stop."""
        self._save("interrupted")
        st = self.state
        # At an epoch boundary the position reads "epoch e, batch <all>" of the epoch done.
        epoch, batch = (st.epoch, self.batches) if st.order is None else (st.epoch + 1, st.batch)
        raise TrainingInterrupted(epoch, batch, self.batches, self.checkpoint_dir, self.stop.signum)

    def _undo_point(self) -> tuple[list, list] | None:
        if not self.forward_state and not self.layer_rngs:
            return None
        return (
            [a.copy() for a in self.forward_state],
            [g.bit_generator.state for g in self.layer_rngs],
        )

    def _undo(self, point: tuple[list, list] | None) -> None:
        if point is not None:
            for a, saved in zip(self.forward_state, point[0], strict=True):
                a[...] = saved
            for g, saved in zip(self.layer_rngs, point[1], strict=True):
                g.bit_generator.state = saved

    def _diverged(self, epoch: int, b: int, loss: float) -> TrainingError:
        """The error for a non-finite loss or gradient at batch ``b``, after the last good
        state was put back (and checkpointed when there is a checkpoint directory)."""
        if not math.isfinite(loss):
            what = f"the loss became {loss}"
        else:
            bad = next((k for k, g in self.grads.items() if not np.isfinite(g).all()), None)
            # All finite yet a non-finite norm: squares past float64's range (|g| > 1e154).
            what = f"the gradient of {bad} became non-finite" if bad else "the gradients overflowed"
        saved = self._save("diverged")
        kept = "the weights are those after the last good step (this one was not applied)"
        if saved is not None:
            kept += f"; a checkpoint of that state was written to {self.checkpoint_dir}"
        clip = self.cfg.clip_grad_norm
        advice = [
            f"a smaller train.optimizer.lr (now {self.lr:g})",
            f"a train.clip_grad_norm below {clip:g}" if clip else "train.clip_grad_norm: 1.0",
        ]
        if not self.network.spec.preprocess.standardize:
            advice.append("standardized inputs (preprocess.standardize: true)")
        advice.append("another initializer (layers[i].initializer)")
        return TrainingError(
            f"{what} at epoch {epoch + 1}, batch {b + 1} (of {self.batches}): training "
            f"diverged; {kept}. Try {', '.join(advice[:-1])} or {advice[-1]}"
        )


def grad_norm(grads: Iterable[np.ndarray]) -> float:
    """Global L2 norm of all the gradient arrays together.

    ``np.vdot`` sums in the arrays' dtype (BLAS, fast); only when that overflows (a float32
    norm past about 1.8e19, which clipping must survive) is it summed again in float64.
    NaN or inf in a gradient gives a non-finite norm either way.
    """
    grads = list(grads)
    squares = sum(float(np.vdot(g, g)) for g in grads)
    if not math.isfinite(squares):
        squares = sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)
    return math.sqrt(squares)


def clip_grad_norm(
    grads: Iterable[np.ndarray], max_norm: float, norm: float | None = None
) -> float:
    """Scale the gradients in place so their global L2 norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_`` does (factor max_norm / (norm + 1e-6)); gradients whose
    norm is within the bound are left untouched. Arrays keep their dtype. ``norm``: the
    global norm when already known. Returns the norm before clipping."""
    grads = list(grads)
    norm = grad_norm(grads) if norm is None else norm
    coef = max_norm / (norm + 1e-6)
    if coef < 1:
        for g in grads:
            g *= g.dtype.type(coef)
    return norm


def _running_regression(ss_res: np.ndarray, ss_tot: np.ndarray, n: int) -> dict[str, float]:
    return {"mse": float(ss_res.sum() / (n * len(ss_res))), "r2": r2_score(ss_res, ss_tot)}


def _count_correct(out: np.ndarray, t: np.ndarray) -> int:
    # count_nonzero, not np.sum: this runs every batch, and on a small batch the generic
    # reduction's overhead is most of the cost.
    if t.ndim == 1:  # class indices
        return int(np.count_nonzero(out.argmax(axis=1) == t))
    if t.shape[1] == 1:  # one logistic unit
        return int(np.count_nonzero((out[:, 0] > 0.5) == (t[:, 0] > 0.5)))
    return int(np.count_nonzero(out.argmax(axis=1) == t.argmax(axis=1)))
