"""The whole flow, one call per stage; the command line and the Python API both go through here.

spec = load_spec(path)                      # YAML -> Spec, located errors
io, rows = resolve(spec)                    # cross-field rules + shape inference
network = build_network(spec)               # seeded weights, init.from loaded where it matches
compiled = compile(spec, "u.onnx")          # nnspec compile: untrained, exported, parity checked
result = train(spec)                        # nnspec train: NumPy backprop; a TrainResult
model = export(result, "m.onnx")            # ONNX, checked, parity checked, written atomically

``export`` is the one way a model is written: it always runs the onnxruntime parity check (on
the held-out data of a ``TrainResult``, on seeded random inputs for a bare network) and writes
the same metadata whoever calls it, so ``nnspec train`` and ``nnspec.train`` + ``nnspec.export``
give the same file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._version import __version__
from .data import core as datamod
from .data import csv_table, fixed
from .data.core import DataInfo, Dataset
from .data.fixed import Parts
from .data.tabular import Imputation, TabularEncoder, TabularPlan
from .errors import DataError, ParityError, SpecError
from .spec import memory
from .spec.messages import unknown_name
from .spec.models import (
    BuiltinData,
    CsvData,
    CsvPart,
    IdxData,
    IdxPart,
    ParquetData,
    ParquetPart,
    Spec,
    as_spec,
)
from .spec.rules import ModelIO, check_rules, tabular_issues, with_output_units
from .spec.shapes import LayerSummary, infer

if TYPE_CHECKING:
    from .nn.network import Network
    from .onnxio import ModelProto
    from .onnxio.init_from import InitReport
    from .training.checkpoint import Checkpoint
    from .training.interrupt import StopRequest
    from .training.state import History

# The trainer (network, training, onnxio) is imported by the functions that use it: `validate`
# goes through resolve() only, and should not pay for loading the rest.

# A bare network has no held-out data: its parity check runs on this many seeded random inputs.
RANDOM_PARITY_SAMPLES = 8
RANDOM_PARITY_SEED = 0


# --- data ----------------------------------------------------------------------------------


def load_data(spec: Spec, base: Path | None = None) -> Dataset | None:
    """The spec's full dataset (before splitting), or None when it names none. A data file
    is read relative to ``base`` (default: the spec file's directory)."""
    d = spec.data
    if d is None:
        return None
    if isinstance(d, BuiltinData):
        return datamod.load_builtin(d.builtin, d.features, spec.task)
    base = spec.source.base_dir if base is None else base
    return _load_source(spec, d, base)


def source_path(d) -> str:
    """The path (or glob) a file source names; for IDX, its images file."""
    if isinstance(d, CsvData | CsvPart):
        return d.csv
    if isinstance(d, ParquetData | ParquetPart):
        return d.parquet
    if isinstance(d, IdxData | IdxPart):
        return d.idx.images
    return d.npz


def _load_source(spec: Spec, d, base: Path, part=None) -> Dataset:
    """One file source of the spec: its main data, or (``part``) a fixed validation or test
    part, which names its own file(s) and takes the rest (target, features, keys) from ``d``."""
    src, held = part or d, part is not None
    if isinstance(d, CsvData):
        plan = tabular_plan(spec)
        if plan is not None:
            if held:  # raw columns: load_parts encodes them with the training data's encoder
                return datamod.load_csv(
                    base / src.csv, d.target, d.features, spec.task, plan, held_out=True
                )
            # Names the spec got wrong are reported at the spec, before any cell is read
            # (a categorical column misspelt would otherwise fail as "expected a number").
            issues = tabular_issues(spec)
            if issues:
                raise SpecError(issues)
            targets = [d.target] if isinstance(d.target, str) else list(d.target)
            header = csv_table.read_header(base / d.csv)
            _check_tabular_names(spec, d.features or [h for h in header if h not in targets])
            raw = datamod.load_csv(base / d.csv, d.target, d.features, spec.task, plan)
            return encode_tabular(spec, raw)
        return datamod.load_csv(base / src.csv, d.target, d.features, spec.task, held_out=held)
    if isinstance(d, ParquetData):
        from .data.parquet import load_parquet

        if tabular_plan(spec) is not None:
            issues = tabular_issues(spec)
            if issues:
                raise SpecError(issues)
            from .data.parquet import read_table

            path = base / src.parquet
            raw = _raw_frame(
                spec, read_table(path), d.target, str(path), features=d.features, held_out=held
            )
            return raw if held else encode_tabular(spec, raw)
        return load_parquet(base / src.parquet, d.target, d.features, spec.task, held)
    if isinstance(d, IdxData):
        return datamod.load_idx(base / src.idx.images, base / src.idx.labels, spec.task, held)
    return datamod.load_npz(base / src.npz, d.x, d.y, spec.task, held)


def in_memory_parts(spec: Spec, x, y, validation=None, test=None) -> Parts:
    """``nnspec.train(spec, x, y, validation=, test=)``'s data as Parts: x a NumPy array,
    DataFrame or pyarrow Table, y labels, targets or a target column's name; validation and
    test ``(x, y)`` pairs in the same form, used as given."""
    from .data import arrays

    if tabular_plan(spec) is not None:
        return _tabular_frames(spec, x, y, validation, test)
    given = arrays.from_memory(x, y, spec.task)
    train_part = given.dataset

    def held(pair, name):
        if pair is None:
            return None
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise DataError(f"{name}: expected an (x, y) pair, got {type(pair).__name__}")
        part = arrays.from_memory(
            pair[0], pair[1], spec.task, where=name, classes=given.classes
        ).dataset
        return fixed.align(part, train_part, name)

    return Parts(train_part, held(validation, "validation"), held(test, "test"))


def _raw_frame(
    spec: Spec, x, y, where: str, classes=None, features=None, held_out=False
) -> Dataset:
    """A DataFrame or Table of raw columns (text categories, missing numbers) as a Dataset of
    raw ``columns`` for ``preprocess.categorical`` / ``impute``: the tabular entry point."""
    from .data import arrays, tabular

    if not arrays.is_frame(x):
        raise DataError(
            f"{where}: preprocess.categorical and impute need named columns; expected a pandas "
            f"DataFrame or a pyarrow Table, got {type(x).__name__}"
        )
    mapping = x if type(x).__module__.startswith("pandas") else x.to_pydict()
    names = [str(c) for c in (x.columns if hasattr(x, "iloc") else x.column_names)]
    # y: labels or targets, or the name (a list of names, for regression) of target columns
    named = isinstance(y, str) or (isinstance(y, list) and y and all(isinstance(t, str) for t in y))
    targets = ([y] if isinstance(y, str) else list(y)) if named else []
    for t in targets:
        if t not in names:
            raise DataError(f"{where}: no target column '{t}'; the columns are: {', '.join(names)}")
    target = targets[0] if targets else None
    if len(targets) == 1:
        y = mapping[target]
    elif targets:
        y = np.column_stack([np.asarray(mapping[t], dtype=float) for t in targets])
    if features is None:
        features = [n for n in names if n not in targets]
    _check_tabular_names(spec, features)
    plan = tabular_plan(spec).with_features(features)
    columns = tabular.columns_from_mapping(mapping, plan, where)
    n = len(next(iter(columns.values())))
    ywhere = f"{where}: column '{target}'" if target else ("y" if where == "x" else f"{where} y")
    if spec.task == "classification":
        yi, found = arrays.encode_labels(
            arrays.labels_of(y, n, ywhere), ywhere, classes, held_out or classes is not None
        )
        info = DataInfo(
            len(features), len(found), features, [target or "y"], [str(c) for c in found]
        )
    else:
        yi = arrays.regression_targets(y, n, ywhere)
        info = DataInfo(len(features), yi.shape[1], features, targets or ["y"], None)
    return Dataset(np.zeros((n, 0)), yi, info, where, columns)


def _tabular_frames(spec: Spec, x, y, validation, test) -> Parts:
    """In-memory frames for a tabular spec: the encoder is fitted on the training rows, and
    the given validation and test frames are encoded by it."""
    train_part = encode_tabular(spec, _raw_frame(spec, x, y, "x"))
    classes = None
    if train_part.info.class_names is not None:
        from .data import arrays

        classes = sorted(
            set(
                arrays.labels_of(
                    y if not isinstance(y, str) else (x[y] if hasattr(x, "iloc") else x.column(y)),
                    len(train_part.y),
                    "y",
                )
            )
        )

    def held(pair, name):
        if pair is None:
            return None
        raw = _raw_frame(spec, pair[0], pair[1], name, classes, list(train_part.columns))
        enc = train_part.encoder
        info = dataclasses.replace(
            raw.info,
            features=train_part.info.features,
            feature_names=train_part.info.feature_names,
            class_names=train_part.info.class_names,
        )
        part = dataclasses.replace(
            raw, x=enc.transform(raw.columns, name, None), info=info, encoder=enc
        )
        return fixed.align(part, train_part, name)

    return Parts(train_part, held(validation, "validation"), held(test, "test"))


def load_parts(spec: Spec, base: Path | None = None) -> Parts | None:
    """The spec's data with its fixed ``validation:`` and ``test:`` parts (None: none given);
    None when the spec names no data."""
    dataset = load_data(spec, base)
    if dataset is None:
        return None
    extra = {}
    for name in ("validation", "test"):
        sub = getattr(spec.data, name, None)
        if sub is not None:
            part = _load_fixed(spec, sub, base)
            if dataset.encoder is not None:  # tabular: encoded as the training rows were
                x = dataset.encoder.transform(part.columns, part.source, part.lines)
                info = dataclasses.replace(
                    part.info,
                    features=dataset.info.features,
                    feature_names=dataset.info.feature_names,
                    encoding=dataset.info.encoding,
                )
                part = dataclasses.replace(part, x=x, info=info, encoder=dataset.encoder)
            extra[name] = fixed.align(part, dataset, name)
    return Parts(dataset, **extra)


def _load_fixed(spec: Spec, sub, base: Path | None) -> Dataset:
    """A ``validation:`` or ``test:`` sub-source: the parent's kind, target and features."""
    base = spec.source.base_dir if base is None else base
    return _load_source(spec, spec.data, base, sub)


def tabular_plan(spec: Spec) -> TabularPlan | None:
    """What ``preprocess.categorical`` / ``impute`` ask for (None: neither), before the
    feature columns are known."""
    pre = spec.preprocess
    if not pre.categorical and pre.impute is None:
        return None
    default, columns = None, {}
    if pre.impute is not None:
        default = Imputation(pre.impute.strategy, pre.impute.value)
        columns = {k: Imputation(v.strategy, v.value) for k, v in pre.impute.columns.items()}
    return TabularPlan(
        [],
        list(pre.categorical or []),
        unknown=pre.unknown,
        max_categories=pre.max_categories,
        impute_default=default,
        impute_columns=columns,
    )


def _check_tabular_names(spec: Spec, features: list[str]) -> None:
    """Columns that ``preprocess`` names must be feature columns: located errors."""
    pre, issues = spec.preprocess, []
    for i, name in enumerate(pre.categorical or []):
        if name not in features:
            issues.append(
                spec.source.issue(
                    ("preprocess", "categorical", i),
                    unknown_name("feature column", name, features, "the data"),
                )
            )
    for name in pre.impute.columns if pre.impute is not None else ():
        path = ("preprocess", "impute", "columns", name)
        if name not in features:
            why = unknown_name("feature column", name, features, "the data")
            issues.append(spec.source.issue(path, why, at_key=True))
        elif name in (pre.categorical or []):
            issues.append(
                spec.source.issue(
                    path,
                    f"'{name}' is categorical; impute fills numeric columns (a missing "
                    "category is encoded as all zeros with unknown: ignore)",
                    at_key=True,
                )
            )
    if issues:
        raise SpecError(issues)


def encode_tabular(spec: Spec, raw: Dataset) -> Dataset:
    """A dataset of raw ``columns`` (any source: CSV here, DataFrames and Parquet through the
    same call) encoded for the network: the encoder is fitted on the training split that
    ``split_data`` will cut (the split is deterministic), then encodes every row, so that
    ``x`` is (samples, encoder.width) and the held-out rows keep their raw columns."""
    _check_tabular_names(spec, raw.info.feature_names)
    plan = tabular_plan(spec).with_features(raw.info.feature_names)
    train = split_data(spec, raw).train
    encoder = TabularEncoder.fit(train.columns, plan, raw.source)
    x = encoder.transform(raw.columns, raw.source, raw.lines)
    info = dataclasses.replace(
        raw.info,
        features=encoder.width,
        feature_names=encoder.feature_names,
        encoding=encoder.describe(),
    )
    return Dataset(x, raw.y, info, raw.source, raw.columns, raw.lines, encoder)


def data_info(spec: Spec) -> DataInfo | None:
    """Sizes and names of the spec's data; built-in datasets are known without loading."""
    d = spec.data
    if d is None:
        return None
    if isinstance(d, BuiltinData):
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
        io = check_rules(spec, None)
        memory.check_memory(spec, io, infer(spec, io))
    io = check_rules(spec, info if info is not None else data_info(spec))
    rows = infer(spec, io)
    memory.check_memory(spec, io, rows)
    return io, rows


@dataclass
class Splits:
    """The parts of a dataset: ``x`` of each is (samples, *input shape) as loaded (features,
    or channels, height, width), ``y`` (samples,) class indices or (samples, outputs)."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None


def held_out_fraction(spec: Spec, test_fraction: float | None = None) -> float:
    """The share held out for testing: ``test_fraction`` when given, else the spec's
    ``data.test_fraction`` (its default, 0.2, for a spec without data trained on arrays)."""
    if test_fraction is not None:
        if not 0 <= test_fraction < 1:
            raise ValueError(f"test_fraction: expected a number in [0, 1), got {test_fraction}")
        return float(test_fraction)
    if spec.data is not None:
        return spec.data.test_fraction
    return CsvData.model_fields["test_fraction"].default


def split_data(
    spec: Spec, dataset: Dataset | Parts, *, test_fraction: float | None = None
) -> Splits:
    """Deterministic test and validation splits from ``train.seed``, stratified by class;
    a part given in ``Parts`` (fixed validation or test data) is used as it is instead.

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

    parts = dataset if isinstance(dataset, Parts) else Parts(dataset)
    dataset = parts.train
    if parts.test is not None:
        rest, test = dataset, parts.test
    else:
        fraction = held_out_fraction(spec, test_fraction)
        rest, test = cut(dataset, fraction, 1, ("data", "test_fraction"), "test")
    val = parts.validation
    if val is None and spec.train.validation_fraction > 0:
        rest, val = cut(
            rest,
            spec.train.validation_fraction,
            3,
            ("train", "validation_fraction"),
            "validation",
        )
    return Splits(rest, val, test if len(test.x) else None)


# --- network -------------------------------------------------------------------------------


def load_pretrained(network: Network) -> InitReport | None:
    """Load ``init.from`` weights into a fresh network; the report, or None without init."""
    if network.spec.init is None:
        return None
    from .onnxio.init_from import load_init

    return load_init(network)


def _fresh(spec: Spec, io: ModelIO, seed: int | None = None, dtype=None):
    """A seeded, untrained network with ``init.from`` loaded; (network, InitReport or None)."""
    from .nn import network as nn

    network = nn.build(with_output_units(spec, io), io, seed=seed, dtype=dtype)
    return network, load_pretrained(network)


def build_network(spec: Spec, seed: int | None = None, dtype=None) -> Network:
    """A fresh, untrained network (seed defaults to ``spec.train.seed``), with the weights of
    ``init.from`` loaded where they match; its standardization is the identity until fitted."""
    io, _ = resolve(spec)
    return _fresh(spec, io, seed, dtype)[0]


def check_pretrained(spec: Spec, io: ModelIO) -> InitReport | None:
    """What ``init.from`` would load (None without it), by loading it into a throwaway network:
    weights that do not fit are an error now, not after training."""
    return _fresh(spec, io)[1] if spec.init is not None else None


def _fit_preprocess(network: Network, splits: Splits, report: InitReport | None) -> None:
    """Standardization fitted on the training split, except the statistics that ``init.from``
    took from the pretrained model (``report``)."""
    network.fit_preprocess(
        splits.train.x,
        splits.train.y,
        inputs=not (report and report.preprocess_loaded),
        targets=not (report and report.targets_loaded),
    )


# --- compile and train ---------------------------------------------------------------------


@dataclass
class Compiled:
    """What ``compile`` made: the untrained ``network`` (standardization fitted on the training
    split when the spec names data), the ``init`` report of ``init.from`` (None without it),
    and the exported ``model`` (an ``onnx.ModelProto``; its tensors point into
    ``<path>.data`` for a model over 2 GB)."""

    network: Network
    init: InitReport | None
    model: ModelProto


# Named after the command it is (nnspec.compile is `nnspec compile`), over Python's builtin.
def compile(
    spec: Spec, path: str | Path | None = None, *, seed: int | None = None, opset=None
) -> Compiled:
    """``nnspec compile``: a seeded, untrained network exported to ONNX, parity checked.

    ``seed`` defaults to ``train.seed``. With data, the standardization is fitted on the
    training split, as training would fit it; the weights stay untrained.
    """
    from . import atomic

    if path is not None:
        atomic.check_writable(path)  # before the data are read, not after
    parts = load_parts(spec)
    io, _ = resolve(spec, parts.info if parts else None)
    network, report = _fresh(spec, io, seed)
    if parts is not None:
        network.tabular = parts.train.encoder  # raw columns in, for a tabular spec
        _fit_preprocess(network, split_data(spec, parts), report)
    return Compiled(network, report, export(network, path, opset))


@dataclass
class TrainResult:
    """One training run of a spec (``train``); ``export(result, path)`` writes its model.

    spec: the Spec trained.
    network: the trained Network; ``network.predict(x)`` takes raw x of (batch, *input shape).
    history: per-epoch rows (``history.epochs``), ``epochs_run``, ``stopped_early``,
        ``best_epoch``.
    metrics: the test split's scores, e.g. ``{"loss": 0.04, "accuracy": 0.97}`` (regression:
        ``loss``, ``mse``, ``r2``); ``{}`` when the spec holds out no test split.
    splits: the data as split (``train``, ``val``, ``test``: Datasets with ``x`` of
        (samples, *input shape) and ``y`` of (samples,) or (samples, outputs); val and test
        may be None).
    seconds: wall-clock seconds of splitting, building, training and scoring.
    init: the InitReport of ``init.from`` (layers loaded, fresh, frozen), or None.
    resumed_from: where the run went on from a checkpoint ("epoch 3, batch 7 (of 19)"), or
        None.
    """

    spec: Spec
    network: Network
    history: History
    metrics: dict[str, float]
    splits: Splits
    seconds: float = 0.0
    init: InitReport | None = None
    resumed_from: str | None = None

    @property
    def held_out(self) -> tuple[str, Dataset]:
        """(name, Dataset) that the parity check runs on: the test split, else the validation
        split, else (a spec that holds out nothing) the training split."""
        s = self.splits
        if s.test is not None:
            return "test", s.test
        if s.val is not None:
            return "validation", s.val
        return "training", s.train


def prepare_training(
    spec: Spec,
    dataset: Dataset | Parts,
    *,
    fit_preprocess: bool = True,
    test_fraction: float | None = None,
) -> tuple[Network, Splits, InitReport | None]:
    """What ``train`` does before the loop, for callers that run the loop themselves (the
    playground): shapes checked against ``dataset`` (a Dataset, or Parts with fixed
    validation/test parts), the data split (``test_fraction`` overriding the spec's), a fresh
    seeded network (``init.from`` loaded) and its standardization fitted on the training split.

    Returns (network, splits, the InitReport of ``init.from`` or None)."""
    parts = dataset if isinstance(dataset, Parts) else Parts(dataset)
    io, _ = resolve(spec, parts.info)
    splits = split_data(spec, parts, test_fraction=test_fraction)
    network, report = _fresh(spec, io)
    network.tabular = parts.train.encoder  # raw columns in, for a tabular spec
    if fit_preprocess:
        _fit_preprocess(network, splits, report)
    return network, splits, report


def _checkpointing(spec: Spec, checkpoint_dir, resume) -> tuple[Checkpoint | None, Path | None]:
    """The loaded ``resume`` checkpoint (checked against the spec) and the directory to write
    checkpoints to; both before any data is read, so a wrong checkpoint fails at once."""
    from .training import checkpoint

    if resume is not None and not isinstance(resume, checkpoint.Checkpoint):
        resume = checkpoint.read_checkpoint(resume)
    if resume is not None:
        resume.check_spec(spec)
    # Resuming keeps checkpointing into the checkpoint's own directory unless told otherwise.
    directory = checkpoint_dir or (resume.path.parent if resume else None)
    if spec.train.checkpoint_every and directory is None:
        raise SpecError(
            [
                spec.source.issue(
                    ("train", "checkpoint_every"),
                    "needs a directory to write checkpoints to; expected nnspec train "
                    "--checkpoint DIR (or --resume DIR), in Python checkpoint_dir= (or "
                    "resume=), got neither",
                )
            ]
        )
    if directory is not None:
        directory = checkpoint.prepare_checkpoint_directory(directory)
    return resume, directory


def train(
    spec: Spec | str | Path | dict,
    x=None,
    y=None,
    *,
    validation=None,
    test=None,
    test_fraction: float | None = None,
    progress: bool | None = False,
    checkpoint_dir: str | Path | None = None,
    resume: str | Path | Checkpoint | None = None,
    stop: StopRequest | None = None,
    on_batch=None,
) -> TrainResult:
    """``nnspec train`` without the export: load and split the data, fit the preprocessing,
    train, and score the test split.

    spec: a Spec, a spec file's path, YAML text or a dict of spec fields.
    x, y: in-memory data instead of the spec's ``data`` (which may then be left out): x a
        NumPy array (samples, features) or (samples, channels, height, width), a pandas
        DataFrame (its columns are the features, by name) or a pyarrow Table; y class labels
        of any sortable type (strings too: their sorted order is the class order, kept as
        the class names), real targets (samples,) or (samples, outputs), or, with a frame,
        the name of its target column.
    validation, test: ``(x, y)`` pairs used as given instead of cut from x.
    test_fraction: the share of x (or of the spec's data) held out for testing when ``test``
        is not given; default the spec's ``data.test_fraction`` (0.2 without data).

    progress: a progress bar (None: when standard error is a terminal).
    checkpoint_dir: where checkpoints go (every ``train.checkpoint_every`` epochs, on a stop,
        on divergence); needed when the spec sets ``checkpoint_every``. With a directory and
        no ``stop``, SIGINT/SIGTERM stop training after the current batch, write a checkpoint
        and raise ``TrainingInterrupted``; without one, Ctrl-C interrupts at once.
    resume: a checkpoint directory, its checkpoint.json, or a loaded Checkpoint, written for
        this spec; checkpoints then go on into its directory unless ``checkpoint_dir`` names
        another. The preprocessing statistics come from the checkpoint, not fitted again.
    stop, on_batch: as ``nnspec.training.loop.fit`` (a StopRequest; a per-batch callback).
    """
    from .training import interrupt, loop

    spec = as_spec(spec)
    resume, directory = _checkpointing(spec, checkpoint_dir, resume)
    if x is not None:
        parts = in_memory_parts(spec, x, y, validation, test)
    elif y is not None or validation is not None or test is not None:
        raise DataError(
            "nnspec.train: y, validation and test go with x (in-memory data); got them without x"
        )
    else:
        parts = load_parts(spec)
    if parts is None:
        raise DataError(
            f"{spec.source.file or '<spec>'}: data: the spec names no data to train on; add "
            "data: {builtin: ...}, {csv: ...}, {npz: ...}, {idx: ...} or {parquet: ...}"
        )
    start = time.perf_counter()
    network, splits, report = prepare_training(
        spec, parts, fit_preprocess=resume is None, test_fraction=test_fraction
    )
    signals = contextlib.nullcontext(stop)
    if stop is None and directory is not None:
        signals = interrupt.stop_on_signals()
    with signals as stop:
        history = loop.fit(
            network,
            splits.train,
            splits.val,
            progress=progress,
            checkpoint_dir=directory,
            resume=resume,
            stop=stop,
            on_batch=on_batch,
        )
    metrics = loop.evaluate(network, splits.test) if splits.test is not None else {}
    return TrainResult(
        spec,
        network,
        history,
        metrics,
        splits,
        time.perf_counter() - start,
        report,
        resume.where if resume else None,
    )


# --- export --------------------------------------------------------------------------------


def _parity_inputs(network: Network) -> np.ndarray:
    """Seeded random raw inputs (RANDOM_PARITY_SAMPLES, *input shape) for a bare network,
    at the scale its standardization expects (mean + scale * N(0, 1)), so the check runs the
    layers on the values they will see rather than on far-off ones."""
    rng = np.random.default_rng(RANDOM_PARITY_SEED)
    if network.tabular is not None:  # raw columns: numbers at their scale, every category
        k = len(network.tabular.numeric)
        scale = {
            name: (float(network.x_mean[i]), float(network.x_scale[i]))
            for i, name in enumerate(network.tabular.numeric[:k])
        }
        return network.tabular.sample_columns(RANDOM_PARITY_SAMPLES, rng, scale)
    z = rng.standard_normal((RANDOM_PARITY_SAMPLES, *network.shape))
    return np.asarray(network.x_mean + network.x_scale * z, np.float32)


def export(
    source: Network | TrainResult, path: str | Path | None = None, opset: int | None = None
) -> ModelProto:
    """ONNX ``ModelProto`` of a trained result or a bare network, checked by the ONNX checker
    and by the onnxruntime parity check; written atomically when ``path`` is given (with its
    tensors in ``<path>.data`` when the model is over protobuf's 2 GB).

    The parity check compares onnxruntime (CPU) with ``network.predict``: on the held-out
    split of a ``TrainResult`` (test, else validation, else training), on seeded random inputs
    for a bare network. A mismatch raises ``ParityError`` and writes nothing. Its numbers go
    into the metadata as ``nnspec_parity``; a ``TrainResult`` also adds
    ``nnspec_test_metrics`` and ``nnspec_epochs_run``.
    """
    from .onnxio import add_metadata, to_onnx, write
    from .onnxio import parity as parity_module

    if isinstance(source, TrainResult):
        network = source.network
        inputs, held = source.held_out
        # A tabular model is checked on the raw held-out rows: the graph's own imputation and
        # one-hot encoding against the encoder's, as well as the layers.
        x = held.columns if network.tabular is not None else held.x
        described, shown = {"inputs": inputs}, f"the {inputs} split"
        metadata = {"test_metrics": source.metrics, "epochs_run": source.history.epochs_run}
    else:
        from .nn.network import Network

        if not isinstance(source, Network):
            raise TypeError(
                "export: expected a TrainResult (from nnspec.train) or a Network (from "
                f"nnspec.build_network), got {type(source).__name__}"
            )
        network = source
        x = _parity_inputs(network)
        described = {"inputs": "random", "seed": RANDOM_PARITY_SEED}
        shown = f"random inputs (seed {RANDOM_PARITY_SEED})"
        metadata = {}
    where = str(path) if path is not None else "<in-memory export>"
    parity_module.check_finite_weights(network, where)

    def check_and_record(model, staged):
        # Parity runs on the exported graph (from its staged files when it has external
        # data) before anything is written; a mismatch raises and leaves nothing behind.
        try:
            parity = parity_module.check_parity(network, staged or model, x)
        except ParityError as e:
            raise ParityError(f"{where}: parity check on {shown}: {e}") from None
        add_metadata(model, {"parity": {**parity, **described}})

    if path is None:
        model = to_onnx(network, opset, metadata=metadata)
        check_and_record(model, None)
        return model
    return write(network, path, opset, finalize=check_and_record, metadata=metadata)


def read_metadata(model: ModelProto) -> dict[str, object]:
    """The model's ``nnspec_*`` metadata, decoded: ``{"parity": {...}, "test_metrics": ...}``
    (the spec's YAML text stays text)."""
    out = {}
    for p in model.metadata_props:
        if p.key.startswith("nnspec_"):
            try:
                out[p.key[len("nnspec_") :]] = json.loads(p.value)
            except ValueError:
                out[p.key[len("nnspec_") :]] = p.value
    return out


def metrics_record(result: TrainResult, model: ModelProto) -> dict:
    """What ``nnspec train --metrics`` writes: the run, the test metrics and the parity numbers
    recorded in ``model`` (the export of ``result``); JSON-safe (an undefined metric is None)."""
    network, history = result.network, result.history
    return _json_safe(
        {
            "spec": result.spec.name,
            "spec_sha256": result.spec.source.sha256,
            "nnspec_version": __version__,
            "param_count": network.param_count(),
            "init": result.init.as_dict() if result.init else None,
            "epochs_run": history.epochs_run,
            "stopped_early": history.stopped_early,
            "best_epoch": history.best_epoch,
            "history": history.epochs,
            "test": result.metrics,
            "parity": read_metadata(model).get("parity"),
            "seconds": result.seconds,
            "resumed_from": result.resumed_from,
        }
    )


def _json_safe(value):
    """NaN (an undefined metric, such as R² of a constant target) becomes JSON null."""
    from .untrusted import finite_json

    return finite_json(value)


# --- import --------------------------------------------------------------------------------


def import_onnx(
    model: str | Path,
    spec_path: str | Path,
    *,
    task: str | None = None,
    classes: list[str] | None = None,
    force: bool = False,
    say=None,
):
    """``nnspec import``: a spec reproducing the ONNX ``model`` (torch, skl2onnx, nnspec) at
    ``spec_path``, its weights in ``<stem>.weights.npz`` beside it (``init.from``), written
    only after the compiled spec matched the model in onnxruntime. Returns the ``Imported``
    record (``.state.rows`` the recognised nodes, ``.check`` the errors measured)."""
    from .onnxio.import_model import import_graph, write_import

    stages = {"say": say} if say else {}  # say(message) hears each stage
    imported = import_graph(model, task=task, classes=classes, **stages)
    write_import(imported, spec_path, compile_imported, force=force, **stages)
    return imported


def compile_imported(spec_path: Path):
    """``nnspec compile`` of an imported spec, in memory, for import's check: the model and
    the layers that ``init.from`` loaded."""
    from .spec.models import load_spec

    compiled = compile(load_spec(spec_path))
    return compiled.model, (compiled.init.loaded if compiled.init else [])
