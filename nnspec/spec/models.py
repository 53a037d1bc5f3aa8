"""The spec language (version 1): Pydantic models, and YAML -> Spec with located errors.

Every field has a description: ``nnspec schema`` turns these models into the JSON Schema that
editors use for completion and hover text.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    Tag,
    ValidationError,
    model_validator,
)

from ..errors import Issue, SpecError
from ..layers import LAYERS, SpecModel
from .messages import describe_value, issues_from_validation_error
from .sweep import SweepSpec
from .yamlload import Marks, load_yaml

BUILTIN_DATASETS = ("iris", "mcycle", "digits", "digits28", "mnist5k")
# What a spec's `layers` items are validated against: the registered kinds, by `kind`. A kind
# registered after this module is loaded rebuilds `Spec` (``_follow_the_registry``).
LayerSpec = LAYERS.spec_union()
MAX_SPEC_BYTES = 1_000_000
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class SpecSource:
    def __init__(self, text: str, file: str | None, marks: Marks, overrides: dict | None = None):
        self.text = text
        self.file = file
        self.marks = marks
        self.sha256 = hashlib.sha256(text.encode()).hexdigest()
        # YAML path -> the command-line argument that set it (`--set train.epochs=5`): a
        # problem there is the argument's, not the file's.
        self.overrides = overrides or {}

    def override_of(self, path: tuple) -> str | None:
        """The ``--set`` argument that set ``path`` or a mapping above it, or None."""
        for n in range(len(path), 0, -1):
            if tuple(path[:n]) in self.overrides:
                return self.overrides[tuple(path[:n])]
        return None

    @property
    def base_dir(self) -> Path:
        """Directory that relative data paths are resolved against."""
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def issue(self, path: tuple, message: str, at_key: bool = False) -> Issue:
        """An ``Issue`` located at the YAML node of ``path`` (or of its key)."""
        arg = self.override_of(path)
        if arg is not None:
            return Issue(message, path, arg)
        mark = self.marks.key(path) if at_key else self.marks.value(path)
        line, col = mark if mark else (None, None)
        return Issue(message, path, self.file, line, col)


class InputSpec(SpecModel):
    """The network's input: flat features, or images of a given shape."""

    features: PositiveInt | None = Field(
        default=None,
        description="Number of input features per sample, for a flat input (batch, features).",
    )
    shape: Annotated[list[PositiveInt], Field(min_length=1, max_length=3)] | None = Field(
        default=None,
        description="Shape of one sample without the batch: [channels, height, width] for "
        "images (NCHW, as ONNX Conv takes them), or [features]. Flat data rows are reshaped "
        "to it (row-major) when the sizes agree.",
    )
    names: list[str] | None = Field(
        default=None,
        description="Feature names, in column order (default: from the data, else x0, x1, ...).",
    )

    @model_validator(mode="after")
    def _one_size(self) -> InputSpec:
        if self.features is None and self.shape is None:
            raise ValueError("expected features: N or shape: [channels, height, width]")
        if self.features is not None and self.shape is not None:
            size = math.prod(self.shape)
            if size != self.features:
                raise ValueError(
                    f"features ({self.features}) and shape {self.shape} (= {size} values) "
                    "disagree; give one of them"
                )
        return self

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.shape) if self.shape is not None else (self.features,)


class InitSpec(SpecModel):
    """Start from the weights of an existing model (pretraining, then fine-tuning)."""

    from_: str = Field(
        alias="from",
        min_length=1,
        description="Path of an .onnx file written by nnspec, or of the .weights.npz that "
        "nnspec import writes, relative to the spec file. The "
        "layers whose names and weight shapes match are loaded; the others (a new head with "
        "another number of classes) start fresh, and the report lists both.",
    )
    preprocess: Literal["model", "refit"] = Field(
        default="model",
        description="model: use the model's standardization statistics, so pretrained layers "
        "see inputs scaled as in their training; refit: fit them on this spec's training data.",
    )


class _DataCommon(SpecModel):
    test_fraction: Fraction = Field(
        default=0.2,
        description="Fraction of the samples held out as the test split (stratified by class "
        "for classification, drawn with train.seed).",
    )


class BuiltinData(_DataCommon):
    """A dataset shipped inside nnspec (works offline)."""

    builtin: Literal[BUILTIN_DATASETS] = Field(  # type: ignore[valid-type]
        description="iris (150x4, 3 classes), mcycle (133 rows, times -> accel), digits "
        "(8x8 handwritten digits, 64 features, 10 classes), digits28 (the same upscaled to "
        "28x28 = 784 features) or mnist5k (5,000 real MNIST digits, 28x28, 500 per class)."
    )
    features: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Use only these feature columns, in this order (e.g. [petal_length, "
        "petal_width] for a 2-D iris). Default: all of them.",
    )


_FIXED = (
    "; nnspec then does not split this part. It is of the same kind as the main source and "
    "inherits its target and features"
)


# The target and feature columns of a table source (CSV, Parquet).
TargetColumns = Annotated[
    Union[str, Annotated[list[str], Field(min_length=1)]],  # noqa: UP007
    Field(description="Name of the target column (for regression, one name or a list of names)."),
]
FeatureColumns = Annotated[
    Union[Annotated[list[str], Field(min_length=1)], None],  # noqa: UP007
    Field(description="Names of the feature columns, in order (default: every other column)."),
]


class CsvPart(SpecModel):
    """A fixed validation or test part of a CSV source."""

    csv: str = Field(min_length=1, description="Path of the CSV file, relative to the spec file.")


class NpzPart(SpecModel):
    """A fixed validation or test part of an NPZ source (same array names)."""

    npz: str = Field(min_length=1, description="Path of the .npz file, relative to the spec file.")


class IdxFiles(SpecModel):
    """The two files of an IDX dataset (the format of MNIST), gzipped or not."""

    images: str = Field(
        min_length=1,
        description="IDX file of the images, (samples, height, width) (e.g. "
        "train-images-idx3-ubyte.gz), relative to the spec file.",
    )
    labels: str = Field(
        min_length=1,
        description="IDX file of the labels, (samples,) (e.g. train-labels-idx1-ubyte.gz).",
    )


class IdxPart(SpecModel):
    """A fixed validation or test part of an IDX source."""

    idx: IdxFiles = Field(description="The part's images and labels files.")


class ParquetPart(SpecModel):
    """A fixed validation or test part of a Parquet source."""

    parquet: str = Field(
        min_length=1, description="Path or glob of the Parquet file(s), relative to the spec file."
    )


class _FileData(_DataCommon):
    """A source read from file(s), which may come with fixed validation and test parts."""


class CsvData(_FileData):
    """A CSV file with a header row."""

    csv: str = Field(min_length=1, description="Path of the CSV file, relative to the spec file.")
    target: TargetColumns
    features: FeatureColumns = None
    validation: CsvPart | None = Field(
        default=None, description="Validation data from another CSV file" + _FIXED + "."
    )
    test: CsvPart | None = Field(
        default=None, description="Test data from another CSV file" + _FIXED + "."
    )


class NpzData(_FileData):
    """A NumPy ``.npz`` archive (loaded without pickle)."""

    npz: str = Field(min_length=1, description="Path of the .npz file, relative to the spec file.")
    x: str = Field(default="x", description="Name of the array of inputs, (samples, features).")
    y: str = Field(
        default="y",
        description="Name of the array of targets: class indices or labels (samples,) for "
        "classification, (samples,) or (samples, outputs) floats for regression.",
    )
    validation: NpzPart | None = Field(
        default=None, description="Validation data from another .npz" + _FIXED + "."
    )
    test: NpzPart | None = Field(
        default=None, description="Test data from another .npz" + _FIXED + "."
    )


class IdxData(_FileData):
    """Images and labels in IDX files, the format of MNIST (read with NumPy alone)."""

    idx: IdxFiles = Field(
        description="{images: path, labels: path}: (samples, height, width) unsigned bytes "
        "(or any IDX type) become (samples, 1, height, width) images."
    )
    validation: IdxPart | None = Field(
        default=None, description="Validation data from other IDX files" + _FIXED + "."
    )
    test: IdxPart | None = Field(
        default=None,
        description="Test data from other IDX files (e.g. MNIST's t10k-* pair)" + _FIXED + ".",
    )


class ParquetData(_FileData):
    """Parquet file(s) (needs pip install "nnspec[parquet]", which installs pyarrow)."""

    parquet: str = Field(
        min_length=1,
        description="Path of a Parquet file, or a glob (data/part-*.parquet) whose files are "
        "read in sorted order, relative to the spec file.",
    )
    target: TargetColumns
    features: FeatureColumns = None
    validation: ParquetPart | None = Field(
        default=None, description="Validation data from other Parquet file(s)" + _FIXED + "."
    )
    test: ParquetPart | None = Field(
        default=None, description="Test data from other Parquet file(s)" + _FIXED + "."
    )


def _data_source(value: object) -> str | None:
    if isinstance(value, dict):
        for key in ("builtin", "csv", "npz", "idx", "parquet"):
            if key in value:
                return key
    return None


DataSpec = Annotated[
    Union[  # noqa: UP007
        Annotated[BuiltinData, Tag("builtin")],
        Annotated[CsvData, Tag("csv")],
        Annotated[NpzData, Tag("npz")],
        Annotated[IdxData, Tag("idx")],
        Annotated[ParquetData, Tag("parquet")],
    ],
    Discriminator(
        _data_source,
        custom_error_type="data_source",
        custom_error_message="expected a mapping with one of the keys builtin, csv, npz, idx "
        "or parquet",
    ),
]


# One-hot encoding of a column with more categories than this is refused unless the spec
# raises preprocess.max_categories: a column of thousands of levels (an identifier, a free-text
# field) is rarely meant as a category, and each level is one input of the first layer.
MAX_CATEGORIES = 100


class ImputeColumnSpec(SpecModel):
    """How one column's missing values are filled (overrides ``impute.strategy``)."""

    strategy: Literal["median", "mean", "most_frequent", "constant"] = Field(
        description="median, mean or most_frequent of the column's training values, or "
        "constant: value."
    )
    value: float | None = Field(
        default=None,
        description="The fill value of strategy constant (default 0); ignored otherwise.",
    )


class ImputeSpec(SpecModel):
    """Missing numeric values (empty CSV cells, NaN, None), filled with statistics of the
    training split; the fill values are constants of the exported graph (IsNaN + Where)."""

    strategy: Literal["median", "mean", "most_frequent", "constant"] = Field(
        default="median",
        description="For every numeric feature column: median, mean or most_frequent (the "
        "smallest of the most frequent, as scikit-learn's SimpleImputer) of the column's "
        "training values, or constant: value.",
    )
    value: float | None = Field(
        default=None,
        description="The fill value of strategy constant (default 0); ignored otherwise.",
    )
    columns: dict[str, ImputeColumnSpec] = Field(
        default_factory=dict,
        description="Per-column overrides, by column name: {horsepower: {strategy: mean}}.",
    )


class PreprocessSpec(SpecModel):
    """Preprocessing fitted on the training split and baked into the exported graph."""

    standardize: bool = Field(
        default=True,
        description="Scale the inputs to zero mean and unit variance, per feature for flat "
        "inputs and per channel for images (exported as Sub and Div nodes before the first "
        "layer).",
    )
    standardize_target: bool = Field(
        default=False,
        description="Regression only: train on standardized targets and undo the scaling in "
        "the exported graph (Mul and Add after the last layer).",
    )
    categorical: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Feature columns to one-hot encode (text or integer values), with the "
        "categories seen in the training split, sorted (numerically when all are integers). "
        "The exported graph then takes one input per column: float32 (batch,) for numbers, "
        "string (batch,) for these (see docs/onnx.md).",
    )
    unknown: Literal["ignore", "error"] = Field(
        default="ignore",
        description="A category not seen in training, or a missing one: ignore encodes it "
        "as all zeros (as scikit-learn's handle_unknown='ignore'); error refuses the row "
        "(nnspec_runtime and nnspec predict name the column and row).",
    )
    max_categories: PositiveInt = Field(
        default=MAX_CATEGORIES,
        description="The most categories one categorical column may have in the training "
        "split; more is an error naming the column and the count (raise it here if meant).",
    )
    impute: ImputeSpec | None = Field(
        default=None,
        description="Fill missing numeric values with statistics of the training split. "
        "Without it, a missing value is an error naming the file, row and column.",
    )


class SGDSpec(SpecModel):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    kind: Literal["sgd"] = Field(
        description="Selects stochastic gradient descent as the optimizer."
    )
    lr: PositiveFloat = Field(
        default=0.01,
        description="Learning rate: each step moves the weights by lr times the gradient (or "
        "the momentum velocity).",
    )
    momentum: Fraction = Field(
        default=0.0,
        description="Momentum coefficient in [0, 1): the fraction of the previous step carried "
        "into the next one (0 is plain SGD).",
    )
    nesterov: bool = Field(
        default=False,
        description="Use Nesterov's accelerated momentum: the gradient step is taken from the "
        "look-ahead point (only matters with momentum > 0).",
    )


class AdamSpec(SpecModel):
    """Adam (Kingma & Ba, 2015)."""

    kind: Literal["adam"] = Field(description="Selects Adam as the optimizer.")
    lr: PositiveFloat = Field(
        default=0.001, description="Learning rate: the largest size of each step (Adam's alpha)."
    )
    beta1: Fraction = Field(
        default=0.9,
        description="Decay rate of the running mean of the gradients (the first-moment "
        "estimate), in [0, 1).",
    )
    beta2: Fraction = Field(
        default=0.999,
        description="Decay rate of the running mean of the squared gradients (the "
        "second-moment estimate), in [0, 1).",
    )
    eps: PositiveFloat = Field(
        default=1e-8,
        description="Small constant added to the denominator sqrt(v) + eps, so that a "
        "parameter with tiny gradients is not divided by zero.",
    )


OptimizerSpec = Annotated[Union[SGDSpec, AdamSpec], Field(discriminator="kind")]  # noqa: UP007


class ConstantLR(SpecModel):
    """The learning rate stays as given."""

    kind: Literal["constant"] = Field(
        description="Selects the constant schedule: the optimizer's lr throughout."
    )


class StepLR(SpecModel):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    kind: Literal["step"] = Field(
        description="Selects the step schedule: lr times gamma every step_size epochs."
    )
    step_size: PositiveInt = Field(
        description="Number of epochs between two multiplications of the learning rate by gamma."
    )
    gamma: float = Field(
        default=0.1,
        gt=0.0,
        le=1.0,
        description="Factor in (0, 1] that the learning rate is multiplied by every step_size "
        "epochs.",
    )


class CosineLR(SpecModel):
    """Cosine annealing from the optimizer's lr down to ``min_lr`` over ``train.epochs``."""

    kind: Literal["cosine"] = Field(
        description="Selects cosine annealing from the optimizer's lr down to min_lr."
    )
    min_lr: NonNegativeFloat = Field(
        default=0.0, description="Learning rate that the cosine curve reaches at the last epoch."
    )


ScheduleSpec = Annotated[
    Union[ConstantLR, StepLR, CosineLR],  # noqa: UP007
    Field(discriminator="kind"),
]


class EarlyStoppingSpec(SpecModel):
    """Stop when the monitored validation metric stops improving; restore the best weights."""

    patience: PositiveInt = Field(
        description="Number of epochs without improvement of the monitored metric after which "
        "training stops."
    )
    monitor: Literal["val_loss", "val_accuracy", "val_mse", "val_r2"] = Field(
        default="val_loss",
        description="Validation metric to watch: val_loss, val_accuracy (classification), "
        "val_mse or val_r2 (regression). Loss and MSE are minimized, the others maximized.",
    )
    min_delta: NonNegativeFloat = Field(
        default=0.0, description="Smallest change that counts as an improvement."
    )


class TrainSpec(SpecModel):
    """How the NumPy trainer runs (minibatch backpropagation)."""

    optimizer: OptimizerSpec = Field(
        default=AdamSpec(kind="adam"),
        description="Optimizer: {kind: sgd, lr, momentum, nesterov} or "
        "{kind: adam, lr, beta1, beta2, eps}.",
    )
    lr_schedule: ScheduleSpec = Field(
        default=ConstantLR(kind="constant"),
        description="Learning-rate schedule, applied per epoch: constant, step or cosine.",
    )
    batch_size: PositiveInt = Field(
        default=32,
        description="Number of training samples per minibatch; the weights are updated once "
        "per minibatch.",
    )
    epochs: PositiveInt = Field(default=100, description="Maximum number of passes over the data.")
    seed: int = Field(
        default=0,
        ge=0,
        description="Seed of the initial weights, the splits and the shuffling: the same spec "
        "and seed give bit-identical weights.",
    )
    weight_decay: NonNegativeFloat = Field(
        default=0.0,
        description="L2 penalty (weight_decay / 2) * sum(W^2) on weights (not biases), added "
        "to the loss.",
    )
    validation_fraction: Fraction = Field(
        default=0.0,
        description="Fraction of the training split held out for validation metrics and early "
        "stopping.",
    )
    early_stopping: EarlyStoppingSpec | None = Field(
        default=None,
        description="Stop when a validation metric stops improving and restore the best "
        "weights: {patience: N, monitor: val_loss}. Needs validation_fraction > 0.",
    )
    shuffle: bool = Field(
        default=True,
        description="Reshuffle the training samples before each epoch (seeded by train.seed).",
    )
    dtype: Literal["float32", "float64"] = Field(
        default="float32",
        description="Floating-point type of training (float64 for numerical checks). The "
        "exported model is float32 either way.",
    )
    clip_grad_norm: PositiveFloat | None = Field(
        default=None,
        description="Largest global L2 norm of the gradients (of all trainable parameters "
        "together): a larger one is scaled down to it before each step, as "
        "torch.nn.utils.clip_grad_norm_ does. Guards against exploding gradients; none when "
        "left out.",
    )
    checkpoint_every: PositiveInt | None = Field(
        default=None,
        description="Write a checkpoint every this many epochs (needs nnspec train --checkpoint "
        "DIR); `--resume DIR` continues from it with bit-identical results. Without it, "
        "--checkpoint DIR writes one only when training is interrupted (SIGINT, SIGTERM) or "
        "diverges.",
    )


class ExportSpec(SpecModel):
    """How the ONNX file is written."""

    opset: int = Field(
        # 18: Gemm-13, Softmax-13 and friends have long-standing CUDA kernels in onnxruntime,
        # where some opset-22 variants still have gaps.
        default=18,
        ge=13,
        le=22,
        description="ONNX opset of the default domain (13 to 22). The IR version is set to "
        "the lowest that the opset needs, so older runtimes can load the file.",
    )
    model_version: int = Field(
        default=1,
        ge=0,
        le=2**63 - 1,
        description="Version of this model, written as the ONNX file's model_version (an "
        "integer that deployments can compare; nnspec inspect shows it).",
    )


class Spec(SpecModel):
    """An nnspec model spec, version 1."""

    spec_version: Literal[1] = Field(description="Version of the spec language; must be 1.")
    name: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Model name (letters, digits, `_`, `.`, `-`); becomes the ONNX graph name.",
    )
    description: str | None = Field(
        default=None,
        description="Free text about the model, written as the ONNX graph's doc_string.",
    )
    task: Literal["classification", "regression"] = Field(
        description="classification (class probabilities and a label) or regression "
        "(real-valued predictions)."
    )
    input: InputSpec | None = Field(
        default=None,
        description="Input size. May be left out when `data` names a dataset, whose shape "
        "then decides.",
    )
    init: InitSpec | None = Field(
        default=None,
        description="Initial weights from a trained model: {from: model.onnx}. Combine with "
        "trainable: false on layers to freeze them.",
    )
    classes: list[str] | None = Field(
        default=None,
        min_length=2,
        description="Class names, for a classification spec without data (with data, the "
        "data's classes are used and must agree).",
    )
    data: DataSpec | None = Field(
        default=None,
        description="Training data: {builtin: iris|mcycle|digits|digits28|mnist5k}, "
        "{csv: path, target: column}, {npz: path, x: key, y: key}, {idx: {images: path, "
        "labels: path}} or {parquet: path_or_glob, target: column}, with test_fraction, or "
        "fixed test: and validation: parts of the same kind. Optional for validate and "
        "compile, and for nnspec.train(spec, x, y) on in-memory data.",
    )
    preprocess: PreprocessSpec = Field(
        default=PreprocessSpec(),
        description="Standardization of the inputs (and, for regression, of the targets), "
        "one-hot encoding of categorical columns and imputation of missing values, fitted on "
        "the training split and baked into the exported graph.",
    )
    layers: list[LayerSpec] = Field(
        min_length=1, description="The layers, input to output; the last one is the output."
    )
    loss: Literal["mse", "cross_entropy", "binary_cross_entropy"] = Field(
        description="mse (mean squared error), cross_entropy (needs a softmax output; fused "
        "and numerically stable) or binary_cross_entropy (needs a logistic output)."
    )
    train: TrainSpec = Field(
        default=TrainSpec(),
        description="How to train: optimizer, learning-rate schedule, batch size, epochs, seed, "
        "regularization, validation split and early stopping.",
    )
    export: ExportSpec = Field(
        default=ExportSpec(),
        description="How the ONNX file is written: its opset and model version.",
    )
    sweep: SweepSpec | None = Field(
        default=None,
        description="Hyperparameter search for nnspec sweep: method (grid or random), the "
        "validation metric that picks the best trial, and the values to try by path "
        "(space). Ignored by train; each trial is the spec without it.",
    )

    _source: SpecSource | None = PrivateAttr(default=None)

    @property
    def source(self) -> SpecSource:
        """Where the spec came from: its text, file and the YAML marks of every node."""
        return self._source or SpecSource(text="", file=None, marks=Marks())

    def layer_names(self) -> list[str]:
        return [layer.name or f"{layer.kind}_{i}" for i, layer in enumerate(self.layers)]


def _follow_the_registry() -> None:
    """Rebuild ``Spec`` with the registry's current union, after a kind is registered."""
    global LayerSpec
    LayerSpec = LAYERS.spec_union()
    Spec.model_fields["layers"].annotation = list[LayerSpec]
    Spec.model_rebuild(force=True)


LAYERS.on_change(_follow_the_registry)


def read_spec_text(path: str | Path) -> str:
    """Read a spec file as UTF-8, turning every way that can fail into a clear error."""
    p = Path(path)
    try:
        size = p.stat().st_size if p.is_file() else 0
    except OSError:
        size = 0
    if size > MAX_SPEC_BYTES:
        # Refused before reading: a spec is a few KB, and parsing megabytes takes seconds.
        raise SpecError(
            [
                Issue(
                    f"the file is {size / 1e6:.1f} MB; a spec is expected to be a few KB (at "
                    f"most {MAX_SPEC_BYTES // 10**6} MB)",
                    (),
                    str(path),
                )
            ]
        )
    if not p.exists() and not p.is_symlink():
        raise SpecError([Issue("no such file", (), str(path))])
    if p.is_dir():
        raise SpecError([Issue("is a directory; expected a YAML spec file", (), str(path))])
    from .. import untrusted
    from ..errors import DataError

    try:
        # A regular file only: a FIFO would block, /dev/zero never end.
        raw = untrusted.read_bytes(p, "spec file", DataError, limit=MAX_SPEC_BYTES)
    except DataError as e:
        message = str(e).removeprefix(f"{path}: ")
        raise SpecError([Issue(message, (), str(path))]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError(
            [
                Issue(
                    f"not UTF-8 text (byte 0x{raw[e.start]:02x}); expected a YAML spec",
                    (),
                    str(path),
                    line,
                    col,
                )
            ]
        ) from None


def parse_spec(text: str, file: str | None = None) -> Spec:
    """YAML text -> validated ``Spec``; every problem becomes a located ``SpecError``."""
    data, marks = load_yaml(text, file)
    if not isinstance(data, dict):
        line, col = marks.value(()) or (1, 1)
        got = describe_value(data)
        raise SpecError(
            [Issue(f"expected a mapping of spec fields, got {got}", (), file, line, col)]
        )
    return spec_from_data(data, SpecSource(text, file, marks))


def spec_from_data(data: dict, source: SpecSource) -> Spec:
    """Validate loaded spec fields; problems located by ``source`` (its marks, and its
    command-line overrides, which a problem at an overridden path names instead)."""
    try:
        spec = Spec.model_validate(data)
    except ValidationError as e:
        issues = issues_from_validation_error(e, data, source.marks, source.file, Spec)
        located = []
        for issue in issues:
            arg = source.override_of(issue.path)
            located.append(Issue(issue.message, issue.path, arg) if arg else issue)
        raise SpecError(located) from None
    spec._source = source
    return spec


def load_spec(path_or_text: str | Path) -> Spec:
    """Load a spec from a file path, or from YAML text (a string with a newline in it)."""
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        return parse_spec(path_or_text, None)
    text = read_spec_text(path_or_text)
    return parse_spec(text, str(path_or_text))


def as_spec(spec: Spec | str | Path | dict) -> Spec:
    """A Spec from a Spec, a file path, YAML text or a dict of spec fields (validated like a
    file: every problem in one located ``SpecError``)."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        import yaml

        # As YAML text, so the model's metadata keeps the spec and messages have lines.
        try:
            text = yaml.safe_dump(spec, sort_keys=False)
        except yaml.YAMLError as e:
            raise SpecError([Issue(f"the dict cannot be written as YAML: {e}")]) from None
        return parse_spec(text, None)
    if isinstance(spec, str | Path):
        return load_spec(spec)
    raise TypeError(
        f"expected a Spec, a spec file's path, YAML text or a dict, got {type(spec).__name__}"
    )
