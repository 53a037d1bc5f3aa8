"""The playground's data: TensorFlow Playground's four 2-D sets, and the built-ins that fit a
picture (iris with two of its features, mcycle).

The 2-D sets follow the Playground's generators (``dataset.ts``): 500 points in [-6, 6]^2,
``noise`` from 0 to 0.5, two classes. Here they are drawn from a seeded NumPy generator, so a
(set, noise, seed) triple always gives the same points. Each choice also says how a spec names
it (``data_spec``): the built-ins by name, a 2-D set as the CSV that ``csv_text`` writes, so
that a spec downloaded from the page, next to that CSV, trains with ``nnspec train`` on
exactly the same points and splits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..data import core as datamod
from ..data.core import DataInfo, Dataset
from ..spec.models import BuiltinData, CsvData

POINTS = 500
# Sorted, as the CSV reader orders class labels: the class indices of a downloaded CSV are
# the same as here. tab10's first two colours (plots/common.py) are blue and orange too.
CLASSES = ["blue", "orange"]
FEATURES = ["x1", "x2"]
TARGET = "label"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MAX_NOISE = 0.5


def _circle(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Inside a disc of radius 2.5 ("blue") or in a ring from 3.5 to 5 ("orange")."""
    radius = 5.0
    parts = []
    for lo, hi in ((0.0, 0.5 * radius), (0.7 * radius, radius)):
        r = rng.uniform(lo, hi, n // 2)
        angle = rng.uniform(0, 2 * math.pi, n // 2)
        parts.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1))
    x = np.concatenate(parts)
    # The label comes from the noisy point's distance, as in the Playground: noise blurs the
    # gap between disc and ring rather than flipping labels at random.
    noisy = x + rng.uniform(-radius, radius, x.shape) * noise
    y = (np.hypot(noisy[:, 0], noisy[:, 1]) > 0.5 * radius).astype(np.int64)
    return x, y


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform in [-5, 5]^2 pushed 0.3 away from the axes; orange where x1 * x2 < 0."""
    x = rng.uniform(-5, 5, (n, 2))
    x += np.where(x > 0, 0.3, -0.3)
    noisy = x + rng.uniform(-5, 5, x.shape) * noise
    y = (noisy[:, 0] * noisy[:, 1] < 0).astype(np.int64)
    return x, y


def _gauss(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clouds around (2, 2) and (-2, -2), wider with noise (0.5 to 4)."""
    spread = 0.5 + 3.5 * noise / MAX_NOISE
    half = n // 2
    blue = rng.normal(2.0, math.sqrt(spread), (half, 2))
    orange = rng.normal(-2.0, math.sqrt(spread), (n - half, 2))
    return np.concatenate([blue, orange]), np.repeat(np.array([0, 1]), [half, n - half])


def _spiral(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spiral arms, 1.75 turns out to radius 5."""
    half = n // 2
    arms, labels = [], []
    for label, delta in ((0, 0.0), (1, math.pi)):
        i = np.arange(half)
        r = i / half * 5
        t = 1.75 * i / half * 2 * math.pi + delta
        arm = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        arms.append(arm + rng.uniform(-1, 1, arm.shape) * noise)
        labels.append(np.full(half, label))
    return np.concatenate(arms), np.concatenate(labels).astype(np.int64)


GENERATORS = {"circle": _circle, "xor": _xor, "gauss": _gauss, "spiral": _spiral}
BUILTINS = ("iris", "mcycle")
CHOICES = (*GENERATORS, *BUILTINS)


class ChoiceError(ValueError):
    """A data choice the page should never send (a bad name, noise out of range)."""


@dataclass(frozen=True)
class DataChoice:
    """What the Data panel chose: a set, its noise and seed (2-D sets), the held-out
    fraction, and for iris the two features."""

    name: str = "xor"
    noise: float = 0.0
    seed: int = 0
    test_fraction: float = 0.5
    features: tuple[str, str] = ("petal_length", "petal_width")

    @classmethod
    def from_json(cls, value: object) -> DataChoice:
        """The page's JSON, checked: every field in range, or a ChoiceError saying which."""
        if not isinstance(value, dict):
            raise ChoiceError(f"data: expected an object, got {type(value).__name__}")
        name = value.get("name", "xor")
        if name not in CHOICES:
            raise ChoiceError(f"data.name: expected one of {', '.join(CHOICES)}, got {name!r}")
        try:
            noise = float(value.get("noise", 0.0))
            seed = int(value.get("seed", 0))
            test = float(value.get("test_fraction", 0.5))
        except (TypeError, ValueError):
            raise ChoiceError("data: noise, seed and test_fraction must be numbers") from None
        if not 0 <= noise <= MAX_NOISE:
            raise ChoiceError(f"data.noise: expected 0 to {MAX_NOISE}, got {noise}")
        if not 0 <= seed < 2**32:
            raise ChoiceError(f"data.seed: expected 0 to 2**32 - 1, got {seed}")
        if not 0.05 <= test <= 0.9:
            raise ChoiceError(f"data.test_fraction: expected 0.05 to 0.9, got {test}")
        features = tuple(value.get("features") or cls.features)
        if (
            len(features) != 2
            or features[0] == features[1]
            or not set(features) <= set(IRIS_FEATURES)
        ):
            raise ChoiceError(
                f"data.features: expected two different iris features of "
                f"{', '.join(IRIS_FEATURES)}, got {list(features)}"
            )
        return cls(name, noise, seed, test, features)

    @property
    def task(self) -> str:
        return "regression" if self.name == "mcycle" else "classification"

    @property
    def csv_name(self) -> str:
        """The file a 2-D set is downloaded as (its spec's ``data.csv``)."""
        return f"playground-{self.name}-noise{self.noise:g}-seed{self.seed}.csv"

    def data_spec(self) -> BuiltinData | CsvData:
        """The spec's ``data`` section that names this choice."""
        if self.name == "iris":
            return BuiltinData(
                builtin="iris", features=list(self.features), test_fraction=self.test_fraction
            )
        if self.name == "mcycle":
            return BuiltinData(builtin="mcycle", test_fraction=self.test_fraction)
        return CsvData(csv=self.csv_name, target=TARGET, test_fraction=self.test_fraction)

    def data_yaml(self) -> str:
        """The same section as one line of YAML, for the spec the page downloads."""
        if self.name == "iris":
            feats = ", ".join(self.features)
            return (
                f"data: {{builtin: iris, features: [{feats}], "
                f"test_fraction: {self.test_fraction:g}}}"
            )
        if self.name == "mcycle":
            return f"data: {{builtin: mcycle, test_fraction: {self.test_fraction:g}}}"
        return (
            f"data: {{csv: {self.csv_name}, target: {TARGET}, "
            f"test_fraction: {self.test_fraction:g}}}"
        )


@lru_cache(maxsize=16)  # validation runs on every keystroke; the arrays are never written
def load_choice(choice: DataChoice) -> Dataset:
    """The chosen data as a Dataset: x (samples, features) float64, y class indices
    (samples,) or targets (samples, 1)."""
    if choice.name in BUILTINS:
        features = list(choice.features) if choice.name == "iris" else None
        return datamod.load_builtin(choice.name, features, choice.task)
    rng = np.random.default_rng([choice.seed, 7])
    x, y = GENERATORS[choice.name](rng, POINTS, choice.noise)
    info = DataInfo(2, 2, list(FEATURES), [TARGET], list(CLASSES))
    return Dataset(x.astype(np.float64), y, info, choice.csv_name)


def choice_of_text(text: str) -> dict | None:
    """The Data panel's first choice for an opened spec: its own built-in data when it names
    iris (with two features) or mcycle, as the page's JSON; None otherwise (or when the text
    does not parse: the editor then shows why)."""
    from ..errors import SpecError
    from ..spec.models import parse_spec

    try:
        spec = parse_spec(text, None)
    except SpecError:
        return None
    d = spec.data
    if not isinstance(d, BuiltinData) or d.builtin not in BUILTINS:
        return {"name": "mcycle"} if spec.task == "regression" else None
    out = {"name": d.builtin, "test_fraction": d.test_fraction}
    if d.builtin == "iris":
        if not d.features or len(d.features) != 2:
            return None
        out["features"] = list(d.features)
    return out


def csv_text(dataset: Dataset) -> str:
    """A 2-D set as CSV (``x1,x2,label``); ``repr`` of each float reads back bit for bit."""
    names = dataset.info.class_names
    lines = [",".join([*dataset.info.feature_names, TARGET])]
    lines += [
        f"{float(a)!r},{float(b)!r},{names[int(c)]}"
        for (a, b), c in zip(dataset.x, dataset.y, strict=True)
    ]
    return "\n".join(lines) + "\n"
