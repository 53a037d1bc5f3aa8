"""The raw-column front of a tabular model's graph: imputation, one-hot encoding, and the
concatenation into the (batch, features) rows the first layer's standardization takes.

Input layout: one graph input per feature column, named after the column, of shape (batch,):
float32 for a numeric column (NaN for a missing value), string for a categorical one (""
for a missing value). Inside:

    numeric, imputed:   IsNaN -> Where(isnan, fill, x) -> Unsqueeze(axis 1)
    numeric:            Unsqueeze(axis 1)
    categorical:        LabelEncoder (ai.onnx.ml: category -> its index, else -1)
                        -> Unsqueeze -> Equal(index, [0 .. k-1]) -> Cast(float)  (batch, k)
    all columns:        Concat(axis 1) -> (batch, width)

An unknown (or missing) category has index -1, which equals no position: all zeros, as
scikit-learn's ``handle_unknown="ignore"``. ``unknown: error`` is enforced before the graph,
by nnspec_runtime (a graph cannot raise). The string-to-index step is ai.onnx.ml's
LabelEncoder because ONNX's Equal takes strings only from opset 19, and nnspec exports
opset 13-22; onnxruntime's CPU provider runs it (it has no CUDA kernel: see the README).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..data.tabular import TabularEncoder
from ..errors import ModelError
from .graph import GraphBuilder

ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 2
RESERVED = ("probabilities", "label", "prediction")


def lower_tabular(
    encoder: TabularEncoder, g: GraphBuilder, batch: str
) -> tuple[str, list[onnx.ValueInfoProto]]:
    """Add the front nodes; (name of the (batch, width) float tensor, the graph inputs)."""
    names = encoder.numeric + encoder.categorical
    clash = [n for n in names if n in RESERVED]
    if clash:
        raise ModelError(
            f"feature column(s) {', '.join(clash)} would share a name with the model's "
            f"outputs ({', '.join(RESERVED)}); rename the column(s) in the data"
        )
    for name in names:  # the inputs keep the columns' names; nodes get other ones
        g.unique(name)
    axis = g.typed_constant("tabular.axis1", np.array([1], np.int64))
    parts, inputs = [], []
    for name in encoder.numeric:
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch]))
        x = name
        if name in encoder.fill:
            fill = g.constant(f"tabular.{name}.fill", np.array(encoder.fill[name]))
            isnan = g.node("IsNaN", [x], name=f"tabular/{name}/IsNaN")
            x = g.node("Where", [isnan, fill, x], name=f"tabular/{name}/impute")
        parts.append(g.node("Unsqueeze", [x, axis], name=f"tabular/{name}/Unsqueeze"))
    for name in encoder.categorical:
        cats = encoder.categories[name]
        inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, [batch]))
        index = g.node(
            "LabelEncoder",
            [name],
            name=f"tabular/{name}/LabelEncoder",
            domain=ML_DOMAIN,
            keys_strings=cats,
            values_int64s=list(range(len(cats))),
            default_int64=-1,
        )
        col = g.node("Unsqueeze", [index, axis], name=f"tabular/{name}/Unsqueeze")
        positions = g.typed_constant(f"tabular.{name}.positions", np.arange(len(cats)))
        hot = g.node("Equal", [col, positions], name=f"tabular/{name}/Equal")
        parts.append(g.node("Cast", [hot], name=f"tabular/{name}/onehot", to=TensorProto.FLOAT))
    x = g.node("Concat", parts, name="tabular/Concat", axis=1) if len(parts) > 1 else parts[0]
    return x, inputs


def opset_imports(encoder: TabularEncoder) -> list[onnx.OperatorSetIdProto]:
    """ai.onnx.ml, when a categorical column needs its LabelEncoder."""
    return [helper.make_opsetid(ML_DOMAIN, ML_OPSET)] if encoder.categorical else []
