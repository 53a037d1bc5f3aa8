"""Training: the minibatch loop, optimizers, learning-rate schedules, checkpoints and signals."""
