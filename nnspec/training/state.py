"""What a training run has done so far: the per-epoch history that ``fit`` returns, and the
loop's position and running sums that a checkpoint saves so a resumed run goes on exactly."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class History:
    """One dict per epoch: epoch, lr, loss and metric (train), val_* (validation), seconds."""

    epochs: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None

    @property
    def epochs_run(self) -> int:
        return len(self.epochs)


@dataclass
class LoopState:
    """Where ``fit`` is, beyond the network's arrays, the optimizer and the RNGs."""

    history: History
    epoch: int = 0  # the epoch being run, from 0
    batch: int = 0  # how many of its batches are done
    order: np.ndarray | None = None  # the epoch's sample order (n,), None until drawn
    total_loss: float = 0.0  # sum over the done batches of loss * batch size
    correct: int = 0  # classification: correctly labelled samples so far
    sq_err: np.ndarray | None = None  # regression: (outputs,) float64 squared error so far
    seconds: float = 0.0  # time spent on this epoch before the current process took over
    best_value: float | None = None  # early stopping: the best monitored value
    best_arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)
    waited: int = 0  # early stopping: epochs since the best one
