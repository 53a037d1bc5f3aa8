"""Learning-rate schedules, evaluated once per epoch (epoch counts from 0)."""

from __future__ import annotations

import math


def learning_rate(schedule, base_lr: float, epoch: int, epochs: int) -> float:
    if schedule.kind == "step":
        return base_lr * schedule.gamma ** (epoch // schedule.step_size)
    if schedule.kind == "cosine":
        # Anneals from base_lr at epoch 0 to min_lr at the last epoch.
        progress = epoch / max(epochs - 1, 1)
        return schedule.min_lr + (base_lr - schedule.min_lr) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )
    return base_lr
