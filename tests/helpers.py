"""Small spec builders shared by the tests."""

from __future__ import annotations

import nnspec


def mlp_spec(
    hidden: str = "tanh",
    output: str = "softmax",
    loss: str = "cross_entropy",
    task: str = "classification",
    features: int = 4,
    units: int = 3,
    extra: str = "",
    dtype: str = "float64",
) -> nnspec.Spec:
    """A small data-free spec: features -> 5 hidden -> units."""
    classes = f"classes: [{', '.join(f'c{i}' for i in range(max(units, 2)))}]\n"
    text = (
        "spec_version: 1\n"
        "name: t\n"
        f"task: {task}\n"
        f"input: {{features: {features}}}\n"
        + (classes if task == "classification" else "")
        + "layers:\n"
        f"  - {{kind: dense, units: 5, activation: {hidden}}}\n"
        f"  - {{kind: dense, units: {units}, activation: {output}}}\n"
        f"loss: {loss}\n"
        f"train: {{dtype: {dtype}, seed: 3{extra}}}\n"
    )
    return nnspec.load_spec(text)
