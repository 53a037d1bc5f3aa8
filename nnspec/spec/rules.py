"""Rules that cross fields, and resolving the model's input and output sizes.

Pydantic checks each field on its own; these checks need several (softmax only on the last
layer, the loss matching the output activation, output units matching the data's classes).
Each problem is located at the YAML node that should change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..data.core import DataInfo
from ..errors import Issue, SpecError
from ..layers import LAYERS
from ..layers.base import dims
from ..nn.activations import ACTIVATIONS
from ..nn.losses import LOSSES
from .models import Spec


@dataclass(frozen=True)
class ModelIO:
    """Input and output sizes and names, from the spec and (when given) its data."""

    features: int  # values per sample: the product of shape
    outputs: int  # units of the last layer
    feature_names: list[str]
    target_names: list[str]
    class_names: list[str] | None  # classification only
    shape: tuple[int, ...] = ()  # one sample's shape: (features,) or (channels, height, width)
    encoding: str | None = None  # tabular data: how the features are made up (DataInfo's)

    def __post_init__(self):
        if not self.shape:
            object.__setattr__(self, "shape", (self.features,))


def _channels_last(shape: tuple[int, ...]) -> bool:
    """(height, width, 1|3|4) read as (channels, height, width): many channels of thin images."""
    return len(shape) == 3 and shape[2] in (1, 3, 4) and shape[0] > 4 and shape[1] > 4


def _layer_issues(spec: Spec) -> list[Issue]:
    src, issues = spec.source, []
    last = len(spec.layers) - 1
    seen: dict[str, int] = {}
    for i, (layer, name) in enumerate(zip(spec.layers, spec.layer_names(), strict=True)):
        if name in seen:
            issues.append(
                src.issue(
                    ("layers", i, "name"),
                    f"layer name '{name}' is already used by layers[{seen[name]}]",
                )
            )
        seen.setdefault(name, i)
        if getattr(layer, "units", None) == "auto" and i != last:
            issues.append(
                src.issue(
                    ("layers", i, "units"),
                    f"auto is only allowed on the output layer (layers[{last}]), whose units "
                    "the data decides; expected a positive integer",
                )
            )
        act = getattr(layer, "activation", None)
        if act is not None and ACTIVATIONS[act].output_only and i != last:
            issues.append(
                src.issue(
                    ("layers", i, "activation"),
                    f"{act} is only allowed on the last layer (layers[{last}]); it normalizes "
                    "across units, so use logistic, tanh, relu, ... in hidden layers",
                )
            )
    out_act = getattr(spec.layers[-1], "activation", None)
    is_dense = spec.layers[-1].kind == "dense"
    if not is_dense:
        issues.append(
            src.issue(
                ("layers", last, "kind"),
                f"the last layer is the output layer and must be dense (its units are the "
                f"classes or targets), got {spec.layers[-1].kind}; end the stack with "
                "flatten and dense",
            )
        )
    needed = LOSSES[spec.loss].output_activation
    if needed and is_dense and out_act != needed:
        issues.append(
            src.issue(
                ("loss",),
                f"{spec.loss} expects a {needed} output layer, got activation "
                f"'{out_act}' on layers[{last}]",
            )
        )
    if spec.task == "regression":
        if spec.loss != "mse":
            issues.append(src.issue(("loss",), f"regression expects loss mse, got {spec.loss}"))
        if is_dense and ACTIVATIONS[out_act].output_only:
            issues.append(
                src.issue(
                    ("layers", last, "activation"),
                    f"regression outputs cannot be a {out_act}; use identity",
                )
            )
        if spec.classes is not None:
            issues.append(src.issue(("classes",), "classes applies to classification only"))
    elif spec.preprocess.standardize_target:
        issues.append(
            src.issue(
                ("preprocess", "standardize_target"),
                "standardize_target applies to regression only",
            )
        )
    if spec.init is None:
        issues += [
            src.issue(
                ("layers", i, "trainable"),
                "is false, but there is no init.from to load this layer's weights from: "
                "frozen, it would keep its random initial weights; add init: {from: "
                "model.onnx}, or leave trainable out",
            )
            for i, layer in enumerate(spec.layers)
            if getattr(layer, "trainable", True) is False
        ]
    frozen = [getattr(layer, "trainable", None) for layer in spec.layers]
    if spec.data is not None and False in frozen and True not in frozen:
        issues.append(
            src.issue(
                ("layers",),
                "every layer with weights is frozen (trainable: false), so training would "
                "change nothing; unfreeze at least the output layer",
            )
        )
    return issues


def _duplicates(src, path: tuple, names: list[str] | None, what: str) -> list[Issue]:
    seen: dict[str, int] = {}
    issues = []
    for i, name in enumerate(names or []):
        if name in seen:
            issues.append(
                src.issue(
                    (*path, i), f"{what} '{name}' is already listed at {path[-1]}[{seen[name]}]"
                )
            )
        seen.setdefault(name, i)
    return issues


def _io_issues(spec: Spec) -> list[Issue]:
    src, d = spec.source, spec.data
    issues = _duplicates(src, ("classes",), spec.classes, "class")
    issues += _duplicates(src, ("input", "names"), spec.input and spec.input.names, "name")
    features = getattr(d, "features", None)
    issues += _duplicates(src, ("data", "features"), features, "feature")
    if getattr(d, "test", None) is not None and "test_fraction" in d.model_fields_set:
        issues.append(
            src.issue(
                ("data", "test_fraction"),
                "test and test_fraction both given; expected one: a fixed test part, or the "
                "fraction to hold out",
            )
        )
    target = getattr(d, "target", None)
    if target is not None:
        targets = [target] if isinstance(target, str) else target
        if spec.task == "classification" and not isinstance(target, str):
            issues.append(
                src.issue(
                    ("data", "target"),
                    f"classification expects one target column, got {len(target)}",
                )
            )
        listed = target if isinstance(target, list) else None
        issues += _duplicates(src, ("data", "target"), listed, "target")
        for i, f in enumerate(features or []):
            if f in targets:
                issues.append(
                    src.issue(
                        ("data", "features", i),
                        f"'{f}' is the target; a feature column cannot also be the target",
                    )
                )
    return issues


def tabular_issues(spec: Spec) -> list[Issue]:
    """preprocess.categorical and impute: CSV columns, not images or the target."""
    src, pre, d = spec.source, spec.preprocess, spec.data
    if not pre.categorical and pre.impute is None:
        return []
    key = "categorical" if pre.categorical else "impute"
    if d is not None and getattr(d, "csv", None) is None and getattr(d, "parquet", None) is None:
        return [
            src.issue(
                ("preprocess", key),
                f"applies to tables of named columns (data: {{csv: ...}} or {{parquet: ...}}), got "
                f"{next(k for k in ('builtin', 'npz', 'idx') if hasattr(d, k))} "
                "data, whose features are numbers already",
            )
        ]
    if spec.input is not None and len(spec.input.sample_shape) > 1:
        return [
            src.issue(
                ("preprocess", key),
                f"applies to flat (batch, features) inputs, got input shape "
                f"{list(spec.input.sample_shape)} (images)",
            )
        ]
    issues = _duplicates(src, ("preprocess", "categorical"), pre.categorical, "column")
    target = getattr(d, "target", None)
    targets = [target] if isinstance(target, str) else list(target or [])
    features = getattr(d, "features", None)
    for i, name in enumerate(pre.categorical or []):
        if name in targets:
            issues.append(
                src.issue(
                    ("preprocess", "categorical", i),
                    f"'{name}' is the target; categorical lists feature columns (a "
                    "classification target's labels may be text already)",
                )
            )
        elif features is not None and name not in features:
            issues.append(
                src.issue(
                    ("preprocess", "categorical", i),
                    f"'{name}' is not one of data.features ({', '.join(features)}); expected "
                    "a feature column",
                )
            )
    return issues


def _train_issues(spec: Spec, data: DataInfo | None = None) -> list[Issue]:
    src, tr, issues = spec.source, spec.train, []
    sched = tr.lr_schedule
    if sched.kind == "cosine" and sched.min_lr > tr.optimizer.lr:
        issues.append(
            src.issue(
                ("train", "lr_schedule", "min_lr"),
                f"expected min_lr <= the optimizer's lr ({tr.optimizer.lr}), got {sched.min_lr}",
            )
        )
    es = tr.early_stopping
    if es is not None:
        if tr.validation_fraction == 0 and not (data and data.fixed_validation):
            issues.append(
                src.issue(
                    ("train", "early_stopping"),
                    "early stopping needs a validation split; set "
                    "train.validation_fraction, e.g. 0.1",
                )
            )
        cls_only, reg_only = {"val_accuracy"}, {"val_mse", "val_r2"}
        if (spec.task == "regression" and es.monitor in cls_only) or (
            spec.task == "classification" and es.monitor in reg_only
        ):
            allowed = ["val_loss", *sorted(cls_only if spec.task == "classification" else reg_only)]
            issues.append(
                src.issue(
                    ("train", "early_stopping", "monitor"),
                    f"{es.monitor} is not a {spec.task} metric; expected "
                    f"{', '.join(allowed[:-1])} or {allowed[-1]}",
                )
            )
    return issues


def check_rules(spec: Spec, data: DataInfo | None) -> ModelIO:
    """All cross-field rules; returns the resolved sizes or raises one ``SpecError`` for all."""
    src = spec.source
    issues = (
        _layer_issues(spec) + _io_issues(spec) + _train_issues(spec, data) + tabular_issues(spec)
    )
    last = len(spec.layers) - 1
    units = getattr(spec.layers[-1], "units", None)
    auto = units == "auto"
    if auto:
        units = None  # decided below, from the data's classes or targets

    shape = spec.input.sample_shape if spec.input else None
    features = math.prod(shape) if shape else None
    if data is not None and features is not None and features != data.features:
        field = "shape" if spec.input.shape is not None else "features"
        given = spec.input.shape if field == "shape" else features
        images = f" ({dims(data.shape)} images)" if data.shape else ""
        issues.append(
            src.issue(
                ("input", field),
                f"the data has {data.features} features per sample{images}, but "
                f"input.{field} is {given}" + (f" ({features} values)" if field == "shape" else ""),
            )
        )
    if (
        data is not None
        and data.shape
        and shape is not None
        and len(shape) == 3
        and tuple(shape) != data.shape
        and features == data.features
    ):
        # The same values arranged otherwise: reshaping would scramble the images.
        issues.append(
            src.issue(
                ("input", "shape"),
                f"the data holds {dims(data.shape)} images, but input.shape is {list(shape)}; "
                "nnspec reads images as (channels, height, width): give input.shape "
                f"{list(data.shape)}, or store the array in that layout (np.transpose(x, "
                "(0, 3, 1, 2)) turns channels-last images around)",
            )
        )
    if shape is None and data is not None and data.shape and _channels_last(data.shape):
        c, h, w = data.shape
        issues.append(
            src.issue(
                ("data",),
                f"the images are {dims(data.shape)}, which looks channels-last ({w} channels "
                f"of {c}×{h}?); nnspec reads (channels, height, width): store them as "
                f"(samples, {w}, {c}, {h}) with np.transpose(x, (0, 3, 1, 2)), or give input: "
                f"{{shape: {list(data.shape)}}} if {c} channels is right",
            )
        )
    if shape is None:
        if data is None:
            issues.append(
                src.issue(
                    (),
                    "the input size is unknown: give input: {features: N}, input: {shape: "
                    "[channels, height, width]} or a data source",
                )
            )
            raise SpecError(issues)
        features = data.features
        # A built-in image dataset feeds convolutions as images, and dense layers as rows.
        wants_image = any(LAYERS[layer.kind].takes_images for layer in spec.layers)
        shape = data.shape if data.shape and wants_image else (features,)

    class_names = None
    if spec.task == "classification" and data is not None and data.class_names is None:
        issues.append(
            src.issue(
                ("task",),
                "the data's target is real-valued, not class labels; expected task: regression",
            )
        )
    elif spec.task == "classification":
        if data is not None:
            class_names = data.class_names
            if spec.classes is not None and list(spec.classes) != class_names:
                issues.append(
                    src.issue(
                        ("classes",),
                        f"the data's classes are {class_names}, "
                        f"but classes lists {list(spec.classes)}",
                    )
                )
        elif spec.classes is not None:
            class_names = list(spec.classes)
        n = len(class_names) if class_names else None
        if auto and n is not None:
            logistic = getattr(spec.layers[-1], "activation", "") == "logistic"
            units = 1 if n == 2 and logistic else n
        binary_ok = (
            n == 2 and units == 1 and getattr(spec.layers[-1], "activation", "") == "logistic"
        )
        if n is not None and units is not None and units != n and not binary_ok:
            issues.append(
                src.issue(
                    ("layers", last, "units"),
                    f"the output layer has {units} units, but the data has {n} "
                    f"classes; expected units: {n}",
                )
            )
        if class_names is None and units is not None:
            class_names = [str(i) for i in range(2 if units == 1 else units)]
    elif auto and data is not None:
        units = data.outputs
    elif data is not None and units is not None and units != data.outputs:
        issues.append(
            src.issue(
                ("layers", last, "units"),
                f"the output layer has {units} units, but the data has "
                f"{data.outputs} target column(s)",
            )
        )
    if issues:
        raise SpecError(issues)

    if spec.input and spec.input.names:
        feature_names = list(spec.input.names)
        if data is not None and feature_names != list(data.feature_names):
            # The columns are the data's, in the data's order: other names would mislabel them
            # in the model's metadata, and `nnspec predict` picks columns by these names.
            raise SpecError(
                [
                    src.issue(
                        ("input", "names"),
                        f"the data's feature columns are {list(data.feature_names)}, but "
                        f"input.names lists {feature_names}; leave input.names out to use the "
                        "data's, or choose columns with data.features",
                    )
                ]
            )
        if len(feature_names) != features:
            raise SpecError(
                [
                    src.issue(
                        ("input", "names"), f"expected {features} names, got {len(feature_names)}"
                    )
                ]
            )
    elif data is not None:
        feature_names = list(data.feature_names)
    else:
        feature_names = [f"x{i}" for i in range(features)]
    if data is not None:
        target_names = list(data.target_names)
    else:
        target_names = (
            ["label"] if spec.task == "classification" else [f"y{i}" for i in range(units or 1)]
        )
    encoding = data.encoding if data is not None else None
    return ModelIO(
        features, units or 0, feature_names, target_names, class_names, tuple(shape), encoding
    )


def with_output_units(spec: Spec, io: ModelIO) -> Spec:
    """``spec`` with ``units: auto`` of its output layer replaced by ``io.outputs`` (the
    classes or targets that the data decided); ``spec`` itself when there is nothing to
    replace. The copy keeps the spec's source, so messages still point into its file."""
    last = spec.layers[-1]
    if getattr(last, "units", None) != "auto" or not io.outputs:
        return spec
    layers = [*spec.layers[:-1], last.model_copy(update={"units": io.outputs})]
    concrete = spec.model_copy(update={"layers": layers})
    concrete._source = spec._source
    return concrete
