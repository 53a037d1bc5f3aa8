"""Starting specs for the playground's data: what the editor shows for each choice until the
user writes their own. Each validates as written (``tests/playground`` checks that)."""

from __future__ import annotations

CLASSIFY_2D = """\
# Two hidden layers of tanh units, as the Playground starts; the Data panel on the
# right chooses the points. Edit anything: the page validates as you type.
spec_version: 1
name: playground
task: classification
preprocess: {standardize: true}
layers:
  - {kind: dense, units: 8, activation: tanh}
  - {kind: dense, units: 8, activation: tanh}
  - {kind: dense, units: 2, activation: softmax}
loss: cross_entropy
train:
  optimizer: {kind: adam, lr: 0.03}
  batch_size: 10
  epochs: 300
  seed: 0
"""

IRIS = """\
# Iris from two of its features (the Data panel picks them), three classes.
spec_version: 1
name: iris2d-playground
task: classification
preprocess: {standardize: true}
layers:
  - {kind: dense, units: 8, activation: tanh}
  - {kind: dense, units: 3, activation: softmax}
loss: cross_entropy
train:
  optimizer: {kind: adam, lr: 0.03}
  batch_size: 8
  epochs: 300
  seed: 0
"""

MCYCLE = """\
# Head acceleration against time after impact: ten logistic units whose weighted sum,
# plus a linear output, draws the curve (each unit's share is drawn too).
spec_version: 1
name: mcycle-playground
task: regression
preprocess: {standardize: true, standardize_target: true}
layers:
  - {kind: dense, units: 10, activation: logistic}
  - {kind: dense, units: 1, activation: identity}
loss: mse
train:
  optimizer: {kind: adam, lr: 0.05}
  lr_schedule: {kind: cosine, min_lr: 0.001}
  batch_size: 16
  epochs: 2000
  seed: 0
"""

TEMPLATES = {
    "circle": CLASSIFY_2D,
    "xor": CLASSIFY_2D,
    "gauss": CLASSIFY_2D,
    "spiral": CLASSIFY_2D,
    "iris": IRIS,
    "mcycle": MCYCLE,
}
