"""``init: {from: model.onnx}``: start a network from the weights of an exported model (or of
the ``.weights.npz`` that ``nnspec import`` writes beside its spec).

Weights are matched by name (``<layer>.<param>``, as the exporter names its initializers) and
shape. A layer whose weights are all there with the same shapes is loaded; a layer the model
lacks, or whose output side differs (a new head with another number of classes), starts
fresh. A difference on the input side of a layer whose input is pretrained (the first layer,
or one after a loaded layer) cannot be a new head: the spec and the model disagree about what
comes in (3 colour channels against 1), and that is an error at the layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import untrusted
from ..errors import ModelError, SpecError
from ..layers import LAYERS
from ..layers.base import dims
from ..nn.network import Network
from .load import check_external_data, initializer_array, load_onnx


def _input_axes(kind: str, key: str, ndim: int) -> tuple[int, ...]:
    """Axes of the layer's array ``key`` that follow its input: a difference there is not a
    new head. From the kind's registry record; an array it does not list counts as all input."""
    return LAYERS[kind].input_axes.get(key, tuple(range(ndim)))


@dataclass
class InitReport:
    """What ``init.from`` did: layers loaded, layers started fresh (with why), preprocessing."""

    source: str
    loaded: list[str] = field(default_factory=list)
    fresh: dict[str, str] = field(default_factory=dict)
    preprocess: str = ""
    preprocess_loaded: bool = False  # input standardization taken from the model
    targets_loaded: bool = False  # regression target scaling taken from the model
    frozen: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"init from {self.source}:"]
        out.append(f"  loaded: {', '.join(self.loaded) if self.loaded else 'none'}")
        for name, why in self.fresh.items():
            out.append(f"  fresh:  {name} ({why})")
        if self.frozen:
            out.append(f"  frozen: {', '.join(self.frozen)}")
        out.append(f"  preprocessing: {self.preprocess}")
        out += [f"  note: {n}" for n in self.notes]
        return out

    def as_dict(self) -> dict:
        return {
            "from": self.source,
            "loaded": self.loaded,
            "fresh": self.fresh,
            "preprocess": self.preprocess,
            "frozen": self.frozen,
            "notes": self.notes,
        }


def _read(path: Path, spec) -> dict[str, np.ndarray]:
    """The model's initializers, through ``load.py``'s checks: a regular file, external data
    inside its directory, real and finite numbers (a NaN weight would train to NaN and be
    reported as divergence), and the standardization statistics in whole pairs."""
    where = ("init", "from")
    if path.suffix == ".npz":
        return _read_npz(path, spec)
    try:
        model = load_onnx(path)
        check_external_data(path, model)
        saved = {t.name: initializer_array(path, t) for t in model.graph.initializer}
    except ModelError as e:
        raise SpecError([spec.source.issue(where, str(e))]) from None
    for a, b in (
        ("preprocess.mean", "preprocess.scale"),
        ("postprocess.mean", "postprocess.scale"),
    ):
        if (a in saved) != (b in saved):
            has, lacks = (a, b) if a in saved else (b, a)
            raise SpecError(
                [
                    spec.source.issue(
                        where,
                        f"{path}: has {has} but no {lacks}; expected both "
                        "(a model written by nnspec has both or neither)",
                    )
                ]
            )
        if b in saved and not (saved[b] > 0).all():
            raise SpecError(
                [
                    spec.source.issue(
                        where,
                        f"{path}: {b} has a value that is not positive; "
                        "expected standard deviations",
                    )
                ]
            )
    return saved


def _read_npz(path: Path, spec) -> dict[str, np.ndarray]:
    """A weights file written by ``nnspec import``: ``<layer>.<param>`` arrays, no pickle."""
    where = ("init", "from")
    if not path.exists() and not path.is_symlink():
        raise SpecError([spec.source.issue(where, f"{path}: no such weights file")])
    try:
        # Through nnspec.untrusted: entries by name and size before decompressing, no pickle.
        arrays = untrusted.read_npz(path, str(path), ModelError)
        for key, a in arrays.items():
            untrusted.check_finite(a, f"{path}: {key}", ModelError, float32=False)
    except ModelError as e:
        raise SpecError([spec.source.issue(where, str(e))]) from None
    bad = [k for k, a in arrays.items() if not np.issubdtype(a.dtype, np.floating)]
    if bad:
        raise SpecError(
            [spec.source.issue(where, f"{path}: {bad[0]} is {arrays[bad[0]].dtype}, not float")]
        )
    return arrays


def _mismatch_text(key: str, got: tuple, want: tuple) -> str:
    return f"{key} is {dims(got)} in the model, {dims(want)} here"


def load_init(network: Network) -> InitReport:
    """Copy matching weights from ``spec.init.from`` into ``network`` (in place)."""
    spec = network.spec
    path = spec.source.base_dir / spec.init.from_
    saved = _read(path, spec)
    report = InitReport(spec.init.from_)
    first, previous_loaded = True, False
    for i, layer in enumerate(network.layers):
        arrays = {**layer.params, **layer.state}
        if not arrays:
            continue
        keys = {k: f"{layer.name}.{k}" for k in arrays}
        missing = [name for name in keys.values() if name not in saved]
        # The model's layer may hold more than this one: a bias that use_bias: false drops.
        extra = [f"{layer.name}.{k}" for k in sorted(LAYERS.array_names() - arrays.keys())]
        extra = [name for name in extra if name in saved]
        if len(missing) == len(keys):
            report.fresh[layer.name] = "not in the model"
        elif missing:
            report.fresh[layer.name] = f"the model has no {', '.join(missing)}"
        elif extra:
            report.fresh[layer.name] = f"the model also has {', '.join(extra)}, this layer not"
        else:
            bad = [k for k, a in arrays.items() if saved[keys[k]].shape != a.shape]
            for k in bad:
                got, want = saved[keys[k]].shape, arrays[k].shape
                on_input = any(
                    len(got) != len(want) or got[a] != want[a]
                    for a in _input_axes(spec.layers[i].kind, k, len(want))
                )
                if on_input and (first or previous_loaded):
                    raise SpecError([_input_error(spec, i, layer, keys[k], got, want)])
            if bad:
                report.fresh[layer.name] = "; ".join(
                    _mismatch_text(keys[k], saved[keys[k]].shape, arrays[k].shape) for k in bad
                )
            else:
                for k, a in arrays.items():
                    a[...] = saved[keys[k]]
                report.loaded.append(layer.name)
        previous_loaded = layer.name in report.loaded
        first = False
    if not report.loaded:
        names = sorted({n.rsplit(".", 1)[0] for n in saved if not n.startswith("preprocess.")})
        raise SpecError(
            [
                spec.source.issue(
                    ("init", "from"),
                    f"no layer of {spec.init.from_} matches this spec by name and shape; the "
                    f"model's layers are {', '.join(names) or 'none'}, this spec's are "
                    f"{', '.join(layer.name for layer in network.layers)}",
                )
            ]
        )
    frozen_fresh = [
        spec.source.issue(
            ("layers", i, "trainable"),
            f"is false, but {layer.name} was not loaded from {spec.init.from_} "
            f"({report.fresh[layer.name]}): frozen, it would keep its random initial weights",
        )
        for i, layer in enumerate(network.layers)
        if not layer.trainable and layer.name in report.fresh
    ]
    if frozen_fresh:
        raise SpecError(frozen_fresh)
    report.frozen = [la.name for la in network.layers if la.params and not la.trainable]
    defaults = [
        name
        for layer_spec, name in zip(spec.layers, spec.layer_names(), strict=True)
        if layer_spec.name is None and name in report.loaded
    ]
    if defaults:
        report.notes.append(
            f"{', '.join(defaults)} matched by default name (<kind>_<index>), which changes "
            "when a layer is inserted before it; name the layers in both specs to be sure"
        )
    _preprocess(network, saved, report)
    return report


def _input_error(spec, i: int, layer, key: str, got: tuple, want: tuple):
    if len(want) == 4 and got[1] != want[1]:
        what = f"its input channels differ (model {got[1]}, spec {want[1]})"
    elif len(want) == 2 and got[0] != want[0]:
        what = f"its input features differ (model {got[0]}, spec {want[0]})"
    else:
        what = f"{_mismatch_text(key, got, want)}"
    hint = (
        "match the input (input.shape) to the pretrained model, or rename the layer to train "
        "it from scratch"
    )
    kind = spec.layers[i].kind
    return spec.source.issue(
        ("layers", i), f"({kind}): cannot load {key} from {spec.init.from_}: {what}; {hint}"
    )


def _preprocess(network: Network, saved: dict[str, np.ndarray], report: InitReport) -> None:
    """Standardization from the model (``init.preprocess: model``): its statistics, or none
    when it was trained without, so that pretrained layers see inputs as they did; otherwise
    fitted on the training data."""
    spec = network.spec
    if spec.init.preprocess == "refit" or not spec.preprocess.standardize:
        report.preprocess = "fitted on the training data" if spec.preprocess.standardize else "off"
    else:
        mean, scale = saved.get("preprocess.mean"), saved.get("preprocess.scale")
        if mean is None and scale is None:
            # Standardizing now would change what the pretrained first layer sees.
            network.x_mean = np.zeros_like(network.x_mean)
            network.x_scale = np.ones_like(network.x_scale)
            report.preprocess = "none: the model was trained without standardization"
            report.preprocess_loaded = True
        elif mean.shape == network.x_mean.shape and scale.shape == network.x_scale.shape:
            network.x_mean = mean.astype(network.dtype)
            network.x_scale = scale.astype(network.dtype)
            report.preprocess = "the model's standardization statistics"
            report.preprocess_loaded = True
        else:
            report.preprocess = (
                "fitted on the training data (the model's statistics are for another input)"
            )
    _target_scaling(network, saved, report)


def _target_scaling(network: Network, saved: dict[str, np.ndarray], report: InitReport) -> None:
    """Regression: a loaded output layer predicts in the units it was trained in, standardized
    targets or not, and the spec must say the same."""
    spec = network.spec
    last = network.layers[-1].name
    if spec.task != "regression" or last not in report.loaded:
        return
    in_model = "postprocess.scale" in saved
    if in_model != spec.preprocess.standardize_target:
        was = "with" if in_model else "without"
        raise SpecError(
            [
                spec.source.issue(
                    ("preprocess", "standardize_target"),
                    f"is {str(spec.preprocess.standardize_target).lower()}, but the output layer "
                    f"{last} loaded from {spec.init.from_} was trained {was} standardized "
                    f"targets; set standardize_target: {str(in_model).lower()}, or rename the "
                    "output layer to train it fresh",
                )
            ]
        )
    if in_model:
        y_mean, y_scale = saved["postprocess.mean"], saved["postprocess.scale"]
        if y_scale.shape == network.y_scale.shape and spec.init.preprocess == "model":
            network.y_mean = y_mean.astype(network.dtype)
            network.y_scale = y_scale.astype(network.dtype)
            report.preprocess += "; targets scaled as in the model"
            report.targets_loaded = True
