"""A seeded car table with text and integer categories and empty cells, and specs over it,
shared by the tabular tests (data, export, runtime, CLI)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

ORIGINS = ("usa", "europe", "japan")
NUMERIC = ["displacement", "horsepower", "weight", "acceleration", "year"]
CATEGORICAL = ["cylinders", "origin"]
HEADER = [
    "cylinders",
    "displacement",
    "horsepower",
    "weight",
    "acceleration",
    "year",
    "origin",
    "name",
    "mpg",
]


def car_rows(n: int = 240, seed: int = 0) -> list[dict[str, str]]:
    """``n`` cars as CSV cells: ``horsepower`` empty in about a tenth of the rows,
    ``weight`` in a few, ``origin`` text, ``cylinders`` integers; ``mpg`` follows from them
    (with noise), so a network has something to learn."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        cyl = int(rng.choice([3, 4, 5, 6, 8], p=[0.05, 0.45, 0.05, 0.2, 0.25]))
        origin = ORIGINS[int(rng.choice(3, p=[0.6, 0.2, 0.2]))]
        disp = round(float(cyl * 40 + rng.normal(0, 15)), 1)
        hp = round(float(disp * 0.5 + rng.normal(20, 10)), 0)
        weight = round(float(1500 + disp * 6 + rng.normal(0, 150)), 0)
        acc = round(float(rng.normal(15.5, 2.5)), 1)
        year = int(rng.integers(70, 83))
        mpg = 45 - weight / 150 + (year - 70) * 0.6 + (2.0 if origin == "japan" else 0.0)
        mpg = round(float(mpg + rng.normal(0, 1.5)), 1)
        rows.append(
            {
                "cylinders": str(cyl),
                "displacement": str(disp),
                "horsepower": "" if rng.random() < 0.1 else str(hp),
                "weight": "" if rng.random() < 0.03 else str(weight),
                "acceleration": str(acc),
                "year": str(year),
                "origin": origin,
                "name": f"car {i}",
                "mpg": str(mpg),
            }
        )
    return rows


def write_cars(path: Path, rows: list[dict[str, str]] | None = None) -> Path:
    rows = car_rows() if rows is None else rows
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def cars_spec(
    csv_name: str = "cars.csv",
    impute: str = "{strategy: median}",
    extra: str = "",
    task: str = "regression",
    epochs: int = 30,
) -> str:
    """A spec over the car table: mpg from the numeric columns and the two categorical ones
    (``origin`` as classification target with ``task: classification``)."""
    if task == "regression":
        target, feats = "mpg", [*CATEGORICAL[:1], *NUMERIC, "origin"]
        head = "  - {kind: dense, units: 1, activation: identity}\nloss: mse\n"
        cats = "[cylinders, origin]"
        std_target = "  standardize_target: true\n"
    else:
        target, feats = "origin", ["cylinders", *NUMERIC, "mpg"]
        head = "  - {kind: dense, units: 3, activation: softmax}\nloss: cross_entropy\n"
        cats, std_target = "[cylinders]", ""
    return (
        "spec_version: 1\n"
        "name: cars\n"
        f"task: {task}\n"
        f"data: {{csv: {csv_name}, target: {target}, features: [{', '.join(feats)}], "
        "test_fraction: 0.25}\n"
        "preprocess:\n"
        f"  categorical: {cats}\n"
        f"  impute: {impute}\n"
        f"{std_target}{extra}"
        "layers:\n"
        "  - {kind: dense, units: 8, activation: tanh}\n"
        f"{head}"
        f"train: {{epochs: {epochs}, batch_size: 32, optimizer: {{kind: adam, lr: 0.01}}}}\n"
    )
