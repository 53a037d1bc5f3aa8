"""Lower a trained ``Network`` to an ONNX ``ModelProto`` and check it strictly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from .._version import __version__
from ..errors import ModelError
from ..layers import LAYERS
from ..nn.network import Network
from .external_data import write_tensors
from .graph import GraphBuilder
from .tabular import lower_tabular
from .tabular import opset_imports as tabular_opsets

BATCH = "batch"
# Protobuf's hard limit on one serialized message; beyond it tensors go to external data. The
# margin leaves room for the graph and metadata around the weights.
MAX_PROTOBUF = 2**31 - 1
MARGIN = 2**20


def _io(name: str, elem_type: int, dims: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, dims)


def _metadata(network: Network, extra: dict[str, object]) -> dict[str, str]:
    spec, io = network.spec, network.io
    meta = {
        "nnspec_version": __version__,
        "nnspec_task": spec.task,
        "nnspec_spec_name": spec.name,
        "nnspec_spec_yaml": spec.source.text,
        "nnspec_spec_sha256": spec.source.sha256,
        "nnspec_feature_names": json.dumps(io.feature_names),
        "nnspec_target_names": json.dumps(io.target_names),
        "nnspec_param_count": str(network.param_count()),
        "nnspec_input_shape": json.dumps(list(io.shape)),
    }
    if io.class_names is not None:
        meta["nnspec_class_names"] = json.dumps(io.class_names)
    if getattr(network, "tabular", None) is not None:  # the raw columns the graph takes
        meta["nnspec_tabular"] = json.dumps(network.tabular.as_metadata())
    for key, value in extra.items():
        meta[f"nnspec_{key}"] = json.dumps(value, sort_keys=True)
    return meta


def to_onnx(
    network: Network,
    opset: int | None = None,
    data_file: Path | None = None,
    metadata: dict[str, object] | None = None,
) -> onnx.ModelProto:
    """Float32 ONNX graph of ``network``: input ``input`` (batch, features) or, for images,
    (batch, channels, height, width); outputs
    ``probabilities`` (batch, classes) float32 and ``label`` (batch,) int64 for classification,
    ``prediction`` (batch, outputs) float32 for regression.

    With ``data_file``, the weights are written there and the model refers to them by the
    file's name (ONNX external data), as a model over 2 GB needs; otherwise they are inside.

    ``metadata`` (such as ``{"test_metrics": {...}}``) adds ``nnspec_<key>`` entries, values
    as JSON, to those every model has (version, spec, names, shapes).
    """
    spec, io = network.spec, network.io
    opset = opset or spec.export.opset
    g = GraphBuilder(np.float32)
    encoder = getattr(network, "tabular", None)
    if encoder is not None:  # raw columns in: imputation and one-hot encoding in the graph
        x, inputs = lower_tabular(encoder, g, BATCH)
    else:
        x = "input"
        g.unique(x)
        inputs = [_io("input", TensorProto.FLOAT, [BATCH, *io.shape])]
    if spec.preprocess.standardize:
        x = g.node(
            "Sub", [x, g.initializer("preprocess.mean", network.x_mean)], name="preprocess/Sub"
        )
        x = g.node(
            "Div", [x, g.initializer("preprocess.scale", network.x_scale)], name="preprocess/Div"
        )
    for layer_spec, layer in zip(spec.layers, network.layers, strict=True):
        x = LAYERS[layer_spec.kind].lower(layer, g, x)

    if spec.task == "regression":
        if spec.preprocess.standardize_target:
            x = g.node(
                "Mul",
                [x, g.initializer("postprocess.scale", network.y_scale)],
                name="postprocess/Mul",
            )
            x = g.node(
                "Add",
                [x, g.initializer("postprocess.mean", network.y_mean)],
                name="postprocess/Add",
            )
        g.nodes.append(helper.make_node("Identity", [x], ["prediction"], name="prediction"))
        outputs = [_io("prediction", TensorProto.FLOAT, [BATCH, io.outputs])]
    else:
        if io.outputs == 1:  # a single logistic unit p = P(class 1): probabilities [1 - p, p]
            one = g.constant("postprocess.one", np.ones((1, 1)))
            q = g.node("Sub", [one, x], name="postprocess/complement")
            x = g.node("Concat", [q, x], name="postprocess/Concat", axis=1)
        g.nodes.append(helper.make_node("Identity", [x], ["probabilities"], name="probabilities"))
        g.nodes.append(
            helper.make_node(
                "ArgMax", ["probabilities"], ["label"], name="label", axis=1, keepdims=0
            )
        )
        n_classes = len(io.class_names or []) or max(io.outputs, 2)
        outputs = [
            _io("probabilities", TensorProto.FLOAT, [BATCH, n_classes]),
            _io("label", TensorProto.INT64, [BATCH]),
        ]
    graph = helper.make_graph(
        g.nodes,
        spec.name,
        inputs,
        outputs,
        initializer=_initializers(g, data_file),
        doc_string=spec.description or "",
    )
    opsets = [helper.make_opsetid("", opset)]
    if encoder is not None:
        opsets += tabular_opsets(encoder)
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="nnspec",
        producer_version=__version__,
        # onnx writes its newest IR version by default, which older runtimes refuse; the
        # lowest IR that the opset needs loads everywhere the opset does.
        ir_version=helper.find_min_ir_version_for(opsets),
    )
    helper.set_model_props(model, _metadata(network, metadata or {}))
    if data_file is None:
        check_onnx_model(model)  # a model with external data is checked from its files by ``write``
    return model


def _initializers(g: GraphBuilder, data_file: Path | None) -> list[onnx.TensorProto]:
    if data_file is None:
        if g.nbytes + MARGIN > MAX_PROTOBUF:
            raise ModelError(
                f"the model's weights take {g.nbytes / 2**30:.2f} GiB, over the 2 GB that one "
                "ONNX (protobuf) message can hold; write it to a file (nnspec.export(network, "
                "path)), which keeps the weights in <path>.data beside it"
            )
        return g.initializers()
    return write_tensors(g.tensors, data_file)


def add_metadata(model: onnx.ModelProto, extra: dict[str, object]) -> None:
    """Add (or replace) ``nnspec_<key>`` metadata entries, values as JSON."""
    props = {p.key: p.value for p in model.metadata_props}
    props.update({f"nnspec_{k}": json.dumps(v, sort_keys=True) for k, v in extra.items()})
    helper.set_model_props(model, props)


def check_onnx_model(model: onnx.ModelProto | str) -> None:
    """The full checker and strict, type-checked shape inference; a failure is a bug.

    A path (of a model with external data) is checked from the file, as protobuf cannot hold
    a model over 2 GB in one message.
    """
    try:
        onnx.checker.check_model(model, full_check=True)
        if isinstance(model, str):
            onnx.shape_inference.infer_shapes_path(
                model, model + ".inferred", check_type=True, strict_mode=True
            )
            os.remove(model + ".inferred")
        else:
            onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ModelError(f"the exported graph failed the ONNX checker: {e}") from e
