"""Fixed splits: validation and test data given as they are, instead of cut at random.

A held-out part comes from its own source (``test: {csv: test.csv}``, ``nnspec.train(...,
test=(x, y))``) and is checked against the training part: the same features (by name when both
have names), the same number of targets, and only classes the training part has, re-indexed
to its class order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .core import Dataset


@dataclass(frozen=True)
class Parts:
    """The data as given: the training part and, when given, fixed validation/test parts."""

    train: Dataset
    validation: Dataset | None = None
    test: Dataset | None = None

    @property
    def info(self):
        """The training part's DataInfo, marking a fixed validation part."""
        info = self.train.info
        if self.validation is not None and not info.fixed_validation:
            info = dataclasses.replace(info, fixed_validation=True)
        return info


def align(part: Dataset, train: Dataset, name: str) -> Dataset:
    """``part`` (a held-out split named ``name``) checked against ``train`` and with its class
    indices re-numbered to the training classes."""
    t, p = train.info, part.info
    where = f"{name} data ({part.source})"
    if p.features != t.features:
        raise DataError(
            f"{where}: has {p.features} features per sample, but the training data "
            f"({train.source}) has {t.features}; expected the same features"
        )
    generic = [f"x{i}" for i in range(t.features)]
    if p.feature_names != t.feature_names and generic not in (p.feature_names, t.feature_names):
        raise DataError(
            f"{where}: the feature columns are {p.feature_names}, but the training data's are "
            f"{t.feature_names}; expected the same columns in the same order"
        )
    if p.shape != t.shape and p.shape is not None and t.shape is not None:
        raise DataError(f"{where}: holds images of shape {p.shape}, the training data {t.shape}")
    if t.class_names is None:
        if p.class_names is not None or p.outputs != t.outputs:
            raise DataError(
                f"{where}: has {p.outputs} target column(s), the training data {t.outputs}; "
                "expected the same targets"
            )
        return dataclasses.replace(part, info=t)
    if p.class_names is None:
        raise DataError(f"{where}: the targets are real-valued, not class labels like training's")
    index = {c: i for i, c in enumerate(t.class_names)}
    present = np.unique(part.y)
    unseen = [p.class_names[c] for c in present if p.class_names[c] not in index]
    if unseen:
        raise DataError(
            f"{where}: class(es) {', '.join(map(repr, unseen[:5]))} are not among the "
            f"training classes {t.class_names}; the network cannot predict a class it never saw"
        )
    remap = np.array([index.get(c, -1) for c in p.class_names], dtype=np.int64)
    return dataclasses.replace(part, y=remap[part.y], info=t)
