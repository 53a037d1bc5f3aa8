"""Reading an exported model back: its metadata, embedded spec and weights, and the NumPy
``Network`` they rebuild (for plots and other tools that look inside a trained model).

The exported graph bakes the preprocessing into named initializers (``preprocess.mean``,
``preprocess.scale``, ``postprocess.scale``, ``postprocess.mean``) beside the layer weights
(``<layer>.<param>``), so a model file alone gives back the network exactly as trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from .. import untrusted
from ..errors import ModelError
from ..nn.network import Network, build
from ..spec.memory import check_memory
from ..spec.models import MAX_SPEC_BYTES, Spec, parse_spec
from ..spec.rules import ModelIO
from ..spec.shapes import infer
from .load import check_external_data, initializer_array, load_onnx


@dataclass
class ModelContents:
    """What an nnspec model file holds, read without running it."""

    path: Path
    metadata: dict[str, str]  # the model's metadata_props, values as written (JSON text)
    model: onnx.ModelProto  # weights in external data stay in their file until asked for

    def weight_names(self) -> list[str]:
        return [t.name for t in self.model.graph.initializer]

    def array(self, name: str) -> np.ndarray:
        """One initializer as an array (from external data when it is stored there)."""
        for t in self.model.graph.initializer:
            if t.name == name:
                return initializer_array(self.path, t)  # real and finite, or a ModelError
        raise ModelError(f"{self.path}: has no weight {name}")

    def arrays(self) -> dict[str, np.ndarray]:
        """Every initializer by name."""
        return {name: self.array(name) for name in self.weight_names()}

    def names(self, key: str) -> list[str] | None:
        """A JSON list of names from the metadata (``feature_names``, ``class_names``...)."""
        value = self.metadata.get(f"nnspec_{key}")
        if value is None:
            return None
        try:
            names = untrusted.parse_json(value, f"{self.path}: metadata nnspec_{key}", ModelError)
        except ModelError:
            names = None
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise ModelError(f"{self.path}: its metadata nnspec_{key} is not a JSON list of names")
        return names

    def spec(self) -> Spec:
        """The spec the model was built from (``nnspec_spec_yaml``), parsed again.

        Its ``source.file`` is None: relative data paths in it are resolved by the caller,
        as the model does not record where its spec file was."""
        text = self.metadata.get("nnspec_spec_yaml")
        if not text:
            raise ModelError(
                f"{self.path}: has no embedded spec (metadata nnspec_spec_yaml); expected a "
                "model written by nnspec train or nnspec compile"
            )
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_SPEC_BYTES:  # the limit of a spec file holds for an embedded one
            raise ModelError(
                f"{self.path}: its embedded spec (nnspec_spec_yaml) is {size / 1e6:.1f} MB; a "
                f"spec is expected to be a few KB (at most {MAX_SPEC_BYTES // 10**6} MB)"
            )
        return parse_spec(text, None)


def read_model(path: str | Path) -> ModelContents:
    """Metadata and weights of the model at ``path``; weights are converted when asked for,
    so that a plot of one layer does not copy the other 240 MB of AlexNet."""
    path = Path(path)
    model = load_onnx(path)
    check_external_data(path, model)
    return ModelContents(path, {p.key: p.value for p in model.metadata_props}, model)


def _input_shape(contents: ModelContents) -> tuple[int, ...] | None:
    """``nnspec_input_shape`` from the metadata, checked against the graph's input: a
    metadata that claims 50,000,000 features for a graph of 2 would have a plot allocate
    gigabytes. None where the metadata has none or it is not a list of positive integers."""
    text = contents.metadata.get("nnspec_input_shape")
    if text is None:
        return None
    where = f"{contents.path}: metadata nnspec_input_shape"
    try:
        raw = untrusted.parse_json(text, where, ModelError, max_bytes=1000, max_depth=1)
    except ModelError:
        return None
    if not isinstance(raw, list) or not raw:
        return None
    try:
        shape = tuple(untrusted.parse_int(d, where, ModelError, 1, 2**31) for d in raw)
    except ModelError:
        return None
    inputs = contents.model.graph.input
    if len(inputs) == 1 and inputs[0].type.HasField("tensor_type"):
        dims = [
            d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim
        ][1:]
        if len(dims) != len(shape) or any(
            d is not None and d != s for d, s in zip(dims, shape, strict=True)
        ):
            raise ModelError(
                f"{where} says the input is {list(shape)}, but the graph's input "
                f"{inputs[0].name!r} takes {['?' if d is None else d for d in dims]} per "
                "sample; the metadata does not describe this graph"
            )
    return shape


def model_io(contents: ModelContents, spec: Spec) -> ModelIO:
    """Sizes and names as the model was exported with them (no data needed)."""
    features = contents.names("feature_names")
    targets = contents.names("target_names")
    classes = contents.names("class_names")
    shape = _input_shape(contents)
    if not shape or features is None or targets is None:
        raise ModelError(
            f"{contents.path}: its nnspec metadata (input shape, feature and target names) is "
            "missing or damaged; expected a model written by nnspec"
        )
    # The output layer's units: one logistic unit serves two classes.
    outputs = getattr(spec.layers[-1], "units", None) or len(classes or targets)
    return ModelIO(math.prod(shape), outputs, features, targets, classes, shape)


def load_network(path: str | Path, dtype=np.float64) -> tuple[Network, ModelContents]:
    """The NumPy network of an exported model, with its weights and preprocessing.

    ``dtype`` float64 by default: computing from the float32 weights in double precision
    keeps derived quantities (a hidden unit's share of the prediction) within float32
    rounding of what onnxruntime computes.
    """
    contents = read_model(path)
    spec = contents.spec()
    io = model_io(contents, spec)
    # The embedded spec's network is sized before it is built (the spec came with the model):
    # it may not claim more weights than the model holds, nor more memory than there is.
    rows = infer(spec, io)
    claimed = sum(r.params for r in rows)
    held = sum(math.prod(t.dims) for t in contents.model.graph.initializer)
    if claimed > held:
        raise ModelError(
            f"{contents.path}: its embedded spec describes {claimed:,} parameters, but the model "
            f"holds {held:,} weights; the metadata does not describe this graph"
        )
    check_memory(spec, io, rows)
    network = build(spec, io, seed=0, dtype=dtype)
    saved = contents.arrays()

    def take(name: str, like: np.ndarray) -> np.ndarray:
        if name not in saved:
            raise ModelError(f"{contents.path}: has no weight {name}, which its spec needs")
        a = saved[name]
        if a.shape != like.shape:
            raise ModelError(
                f"{contents.path}: {name} has shape {a.shape}, its spec needs {like.shape}"
            )
        return a.astype(network.dtype)

    for layer in network.layers:
        for table in (layer.params, layer.state):
            for key, array in table.items():
                array[...] = take(f"{layer.name}.{key}", array)
    # Absent statistics mean the model was exported without that scaling: the defaults
    # (mean 0, scale 1) are then exactly what the graph does.
    for attr, name in (
        ("x_mean", "preprocess.mean"),
        ("x_scale", "preprocess.scale"),
        ("y_mean", "postprocess.mean"),
        ("y_scale", "postprocess.scale"),
    ):
        if name in saved:
            setattr(network, attr, take(name, getattr(network, attr)))
    return network, contents
