"""What a model file says about itself: doc strings on the model, its input and outputs, and the
shapes of every intermediate value (``value_info``), so that Netron and ``onnx.helper``
readers see what each tensor holds without the spec beside it."""

from __future__ import annotations

import onnx

from ..nn.network import Network

_SHOWN_NAMES = 12  # at most this many feature or class names in one doc string


def _names(names: list[str] | None) -> str:
    names = list(names or [])
    if len(names) <= _SHOWN_NAMES:
        return ", ".join(names)
    return ", ".join(names[:_SHOWN_NAMES]) + f", ... ({len(names)} in all)"


def _dims(shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return f"(batch, {shape[0]}, {shape[1]}, {shape[2]}): channels, height, width"
    return f"(batch, {shape[0]})"


def document(model: onnx.ModelProto, network: Network) -> None:
    """Set the doc strings of ``model`` (lowered from ``network``) in place."""
    spec, io = network.spec, network.io
    scaled = (
        "; standardized inside the graph (preprocess/Sub, preprocess/Div)"
        if spec.preprocess.standardize
        else ""
    )
    model.doc_string = (
        f"{spec.name}: an nnspec {spec.task} model ({network.param_count():,} parameters), "
        "written by nnspec from the spec in the metadata (nnspec_spec_yaml)."
        + (f" {spec.description}" if spec.description else "")
    )
    features = _names(io.feature_names)
    encoder = getattr(network, "tabular", None)
    for value in model.graph.input:
        if encoder is not None:  # a tabular model: one raw column per input
            value.doc_string = _column_doc(encoder, value.name)
            continue
        value.doc_string = f"float32 {_dims(io.shape)}: raw input values{scaled}" + (
            f"; features in order: {features}" if features and len(io.shape) == 1 else ""
        )
    for value in model.graph.output:
        if value.name == "probabilities":
            classes = _names(io.class_names) or "class indices 0, 1, ..."
            value.doc_string = (
                f"float32 (batch, classes): the probability of each class, columns in class "
                f"order: {classes}; each row sums to 1"
            )
        elif value.name == "label":
            value.doc_string = (
                "int64 (batch,): the predicted class, an index into the class order of "
                "probabilities (its argmax; names in the metadata as nnspec_class_names)"
            )
        elif value.name == "prediction":
            value.doc_string = (
                f"float32 (batch, {io.outputs}): the predicted targets in their own units"
                + (f": {_names(io.target_names)}" if io.target_names else "")
            )


def _column_doc(encoder, name: str) -> str:
    """One raw column of a tabular model: its type, and what the graph does with it."""
    if name in encoder.categorical:
        cats = _names(list(encoder.categories[name]))
        return f"string (batch,): the raw column {name}, one-hot encoded over: {cats}"
    fill = encoder.fill.get(name)
    missing = f"a missing value (NaN) becomes {fill:.6g}" if fill is not None else "no NaN"
    return f"float32 (batch,): the raw numeric column {name}; {missing}"


def keep_inferred_shapes(model: onnx.ModelProto) -> None:
    """Add the shapes that ONNX shape inference finds for every intermediate value to
    ``model.graph.value_info`` (the exporter checks with the same inference; keeping its result
    costs nothing and lets viewers show the shape on every edge)."""
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    known = {v.name for v in (*model.graph.input, *model.graph.output)}
    del model.graph.value_info[:]
    model.graph.value_info.extend(v for v in inferred.graph.value_info if v.name not in known)
