"""The whole flow, one call per stage; the CLI and the Python API both go through here.

spec = load_spec(path)                  # YAML -> Spec, located errors
io, rows = resolve(spec)                # cross-field rules + shape inference
network = build(spec)                   # seeded weights, init.from loaded where it matches
network, history = train(spec)          # NumPy minibatch backprop
model = export(network, "m.onnx")       # ONNX, checked, written atomically
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .data import core as datamod
from .data.core import DataInfo, Dataset
from .errors import DataError, SpecError
from .spec import memory
from .spec.messages import unknown_name
from .spec.models import Spec
from .spec.rules import ModelIO, check
from .spec.shapes import LayerSummary, infer

if TYPE_CHECKING:
    from .nn.network import Network
    from .training.state import History

# The trainer (network, train.loop) is imported by the functions that use it: `validate`
# goes through resolve() only, and should not pay for loading the rest.


def load_data(spec: Spec) -> Dataset | None:
    """The spec's full dataset (before splitting), or None when it names none."""
    d = spec.data
    if d is None:
        return None
    if hasattr(d, "builtin"):
        return datamod.load_builtin(d.builtin, d.features, spec.task)
    base = spec.source.base_dir
    if hasattr(d, "csv"):
        return datamod.load_csv(base / d.csv, d.target, d.features, spec.task)
    return datamod.load_npz(base / d.npz, d.x, d.y, spec.task)


def data_info(spec: Spec) -> DataInfo | None:
    """Sizes and names of the spec's data; built-in datasets are known without loading."""
    if spec.data is None:
        return None
    if hasattr(spec.data, "builtin"):
        d = spec.data
        known = datamod.BUILTIN_INFO[d.builtin].feature_names
        unknown = [
            spec.source.issue(("data", "features", i), unknown_name("feature", f, known, d.builtin))
            for i, f in enumerate(d.features or [])
            if f not in known
        ]
        if unknown:
            raise SpecError(unknown)
        return datamod.builtin_info(d.builtin, d.features, spec.task)
    dataset = load_data(spec)
    return dataset.info if dataset else None


def resolve(spec: Spec, info: DataInfo | None = None) -> tuple[ModelIO, list[LayerSummary]]:
    """Cross-field rules and shape inference: sizes, names and the per-layer summary."""
    if info is None and spec.input is not None and spec.data is not None:
        # The spec gives its input: an impossible stack (or one too big for this machine) is
        # reported before any data is read.
        io = check(spec, None)
        memory.check(spec, io, infer(spec, io))
    io = check(spec, info if info is not None else data_info(spec))
    rows = infer(spec, io)
    memory.check(spec, io, rows)
    return io, rows


def build(spec: Spec, seed: int | None = None, dtype=None) -> Network:
    """A fresh, untrained network (seed defaults to ``spec.train.seed``), with the weights of
    ``init.from`` loaded where they match."""
    from .nn.network import build as build_network

    io, _ = resolve(spec)
    network = build_network(spec, io, seed=seed, dtype=dtype)
    initialize(network)
    return network


@dataclass
class Splits:
    train: Dataset
    val: Dataset | None
    test: Dataset | None


def split(spec: Spec, dataset: Dataset) -> Splits:
    """Deterministic test and validation splits from ``train.seed``, stratified by class.

    A class that lands only in a held-out part (a class of one sample, with a fraction of over
    a half) is an error: the network could never learn it, and its score would be meaningless.
    """
    seed = spec.train.seed
    classification = spec.task == "classification"

    def unseen(classes: np.ndarray, part: str, path: tuple, fraction: float) -> str:
        names = dataset.info.class_names or [str(c) for c in range(int(classes.max()) + 1)]
        counts = np.bincount(dataset.y, minlength=len(names))
        many = len(classes) > 1
        shown = ", ".join(
            f"'{names[c]}' ({counts[c]} sample{'s' if counts[c] != 1 else ''})" for c in classes
        )
        return (
            f"class{'es' if many else ''} {shown} of {dataset.source} would be only in the "
            f"{part} split, never in training, so the network could not learn "
            f"{'them' if many else 'it'}; expected every class in the training split: add "
            f"samples of {'these classes' if many else 'that class'} (2 at least), remove "
            f"{'them' if many else 'it'} from the data, or lower {'.'.join(path)} "
            f"(now {fraction})"
        )

    def cut(part: Dataset, fraction: float, stream: int, path: tuple, name: str):
        strat = part.y if classification else None
        try:
            keep, held = datamod.split(
                len(part.x), strat, fraction, np.random.default_rng([seed, stream])
            )
        except DataError as e:
            raise SpecError([spec.source.issue(path, str(e))]) from None
        if classification:
            only_held = np.setdiff1d(part.y[held], part.y[keep])
            if len(only_held):
                issue = spec.source.issue(path, unseen(only_held, name, path, fraction))
                raise SpecError([issue])
        return part.take(keep), part.take(held)

    rest, test = cut(dataset, spec.data.test_fraction, 1, ("data", "test_fraction"), "test")
    val = None
    if spec.train.validation_fraction > 0:
        rest, val = cut(
            rest,
            spec.train.validation_fraction,
            3,
            ("train", "validation_fraction"),
            "validation",
        )
    return Splits(rest, val, test if len(test.x) else None)


def initialize(network: Network):
    """Load ``init.from`` weights into a fresh network; the report, or None without init."""
    if network.spec.init is None:
        return None
    from .onnxio.init_from import load_init

    return load_init(network)


def fit_preprocess(network: Network, splits: Splits, report=None) -> None:
    """Standardization fitted on the training split, except the statistics that ``init.from``
    took from the pretrained model (``report``, the InitReport)."""
    network.fit_preprocess(
        splits.train.x,
        splits.train.y,
        inputs=not (report and report.preprocess_loaded),
        targets=not (report and report.targets_loaded),
    )


@dataclass
class TrainResult:
    network: Network
    history: History
    splits: Splits
    test: dict = field(default_factory=dict)
    seconds: float = 0.0
    init: object = None  # the InitReport of init.from, if any


def train_full(
    spec: Spec,
    *,
    progress: bool | None = False,
    checkpoint_dir: str | Path | None = None,
    resume=None,
    stop=None,
    on_batch=None,
) -> TrainResult:
    """Load and split the data, fit the preprocessing, train, and score the test split.

    ``checkpoint_dir``, ``resume`` (a loaded ``nnspec.train.checkpoint.Checkpoint``), ``stop``
    and ``on_batch`` go to ``fit``. When resuming, the preprocessing statistics come from the
    checkpoint rather than being fitted again."""
    dataset = load_data(spec)
    if dataset is None:
        raise DataError(
            f"{spec.source.file or '<spec>'}: data: the spec names no data to train on; add "
            "data: {builtin: ...}, {csv: ...} or {npz: ...}"
        )
    io, _ = resolve(spec, dataset.info)
    start = time.perf_counter()
    from .nn.network import build as build_network
    from .training import loop

    splits = split(spec, dataset)
    network = build_network(spec, io)
    report = initialize(network)
    if resume is None:
        fit_preprocess(network, splits, report)
    history = loop.fit(
        network,
        splits.train,
        splits.val,
        progress=progress,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        stop=stop,
        on_batch=on_batch,
    )
    test = loop.evaluate(network, splits.test) if splits.test is not None else {}
    return TrainResult(network, history, splits, test, time.perf_counter() - start, report)


def train(spec: Spec, *, progress: bool | None = False) -> tuple[Network, History]:
    """Train the spec on its data; returns the network and the per-epoch history."""
    result = train_full(spec, progress=progress)
    return result.network, result.history


def export(network: Network, path: str | Path | None = None, opset: int | None = None):
    """ONNX ``ModelProto`` of ``network`` (checked); written atomically when ``path`` is given
    (with its tensors in ``<path>.data`` when the model is over protobuf's 2 GB)."""
    from .onnxio import to_onnx, write

    return to_onnx(network, opset) if path is None else write(network, path, opset)
