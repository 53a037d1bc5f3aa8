"""A foreign ONNX graph, read for ``nnspec import``: untrusted bytes in, a checked graph out.

What is checked before any weight is converted (each failure a ModelError that names the file
and the node or tensor): that the file parses (load.py), that external data stays inside the
model's folder and is long enough (the runtime's own guard), that no tensor declares more
bytes than it holds or than a model can sensibly need, that every node input comes from
somewhere (no dangling names) and that the nodes form no cycle. Models older than opset 13 are
upgraded with ``onnx.version_converter`` first, so the patterns see one operator version.

``ForeignGraph`` then gives the importer the nodes in topological order, which node makes and
which nodes read each value, the constants (initializers, Constant nodes, and values folded
from constants by a few shape-and-layout ops) and the inferred shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import ModelError
from .load import load_onnx

# onnx's default domain; an older opset is converted to this one before matching.
MIN_OPSET = 13
# One tensor over this is refused before it is read: far beyond any network nnspec trains
# (AlexNet's largest weight is 151 MB), and a hostile file could declare terabytes.
MAX_TENSOR_BYTES = 4 * 2**30
# An input of more values per sample than this is refused: 64 M floats is a 4096×4096 RGB image.
MAX_SAMPLE_VALUES = 64 * 2**20
# Ops whose output is folded to a constant when all their inputs are constants: the ways
# exporters reshape, transpose or cast weights and compute shapes.
FOLDABLE = frozenset(
    {
        "Identity", "Cast", "Transpose", "Reshape", "Unsqueeze", "Squeeze", "Concat", "Gather",
        "Slice", "Flatten", "Mul", "Add", "Sub", "Div", "Neg", "Sqrt", "Reciprocal",
    }
)  # fmt: skip


def _tensor_bytes(t: TensorProto) -> int:
    itemsize = (
        np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        if (t.data_type not in (TensorProto.UNDEFINED, TensorProto.STRING))
        else 1
    )
    return math.prod(t.dims) * itemsize


def _all_tensors(model: onnx.ModelProto):
    """(where, tensor) for every initializer and every Constant node's value."""
    for t in model.graph.initializer:
        yield f"initializer {t.name!r}", t
    for node in model.graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield f"node {node.name!r} ({node.op_type})", a.t


def _check_tensors(model: onnx.ModelProto, path: Path) -> None:
    from nnspec_runtime.errors import RuntimeModelError
    from nnspec_runtime.external import check_external

    refs = []
    for where, t in _all_tensors(model):
        if any(d < 0 for d in t.dims):
            raise ModelError(f"{path}: {where} has a negative dimension {list(t.dims)}")
        size = _tensor_bytes(t)
        if size > MAX_TENSOR_BYTES:
            raise ModelError(
                f"{path}: {where} declares dims {list(t.dims)}, {size / 2**30:.3g} GiB; refused "
                f"(at most {MAX_TENSOR_BYTES / 2**30:.0f} GiB per tensor): a damaged or hostile "
                "file"
            )
        if t.data_location == TensorProto.EXTERNAL:
            info = {e.key: e.value for e in t.external_data}
            try:
                offset = int(info.get("offset", 0))
                length = int(info["length"]) if "length" in info else None
            except ValueError:
                raise ModelError(
                    f"{path}: {where}: its external data offset or length is not a number"
                ) from None
            if length is not None and length < size:
                raise ModelError(
                    f"{path}: {where} declares dims {list(t.dims)} ({size} bytes) but its "
                    f"external data holds {length}"
                )
            refs.append((t.name, info.get("location"), offset, length if length else size))
        elif t.HasField("raw_data") and t.data_type != TensorProto.STRING:
            if len(t.raw_data) != size:
                raise ModelError(
                    f"{path}: {where} declares dims {list(t.dims)} ({size} bytes) but holds "
                    f"{len(t.raw_data)} bytes: a truncated or damaged file"
                )
    try:
        check_external(str(path), path.parent, refs)
    except RuntimeModelError as e:
        raise ModelError(str(e)) from None
    if refs:
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(path.parent))
        except Exception as e:  # noqa: BLE001  onnx raises several types for bad data files
            raise ModelError(f"{path}: cannot read its external data: {e}") from None


def _upgrade(model: onnx.ModelProto, path: Path) -> tuple[onnx.ModelProto, int]:
    """The model at opset >= MIN_OPSET (converted when older); and its original opset."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise ModelError(f"{path}: imports no version of the default ONNX domain")
    if opset >= MIN_OPSET:
        return model, opset
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, MIN_OPSET), opset
    except Exception as e:  # noqa: BLE001  the converter raises RuntimeError and others
        raise ModelError(
            f"{path}: opset {opset} could not be upgraded to {MIN_OPSET} by "
            f"onnx.version_converter: {e}"
        ) from None


@dataclass
class ForeignGraph:
    """A checked foreign graph: nodes in topological order and what the importer asks of it."""

    path: Path
    model: onnx.ModelProto
    source_opset: int
    nodes: list[onnx.NodeProto]
    producer: dict[str, onnx.NodeProto]
    consumers: dict[str, list[onnx.NodeProto]]
    constants: dict[str, np.ndarray]
    shapes: dict[str, tuple]  # value name -> dims (int, or str for a symbolic one)
    inputs: list[onnx.ValueInfoProto]  # the real inputs (not initializers listed as inputs)
    outputs: list[onnx.ValueInfoProto]
    position: dict[int, int] = field(default_factory=dict)  # id(node) -> index in ``nodes``
    opset: int = MIN_OPSET  # of the default domain, after any upgrade

    def where(self, node: onnx.NodeProto) -> str:
        """``node 'fc1' (Gemm), node 5 of 12, after 'relu' (Relu)``: a node located in words."""
        i = self.position[id(node)]
        text = (
            f"node {node.name or '<unnamed>'!r} ({node.op_type}), node {i + 1} of {len(self.nodes)}"
        )
        data = [self.producer[v] for v in node.input if v in self.producer]
        if data:
            text += ", after " + ", ".join(f"{p.name!r} ({p.op_type})" for p in data)
        else:
            text += ", reading the graph input"
        return text

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def constant(self, name: str) -> np.ndarray | None:
        return self.constants.get(name)


def _order(nodes, known: set[str], path: Path) -> list[onnx.NodeProto]:
    """Kahn's order; a dangling input or a cycle is an error that names the nodes."""
    made = {o: n for n in nodes for o in n.output if o}
    for n in nodes:
        for v in n.input:
            if v and v not in known and v not in made:
                raise ModelError(
                    f"{path}: node {n.name or '<unnamed>'!r} ({n.op_type}) reads {v!r}, which "
                    "no node, initializer or graph input provides (a dangling input)"
                )
    waiting = {id(n): {v for v in n.input if v in made} for n in nodes}
    readers: dict[str, list] = {}
    for n in nodes:
        for v in waiting[id(n)]:
            readers.setdefault(v, []).append(n)
    ready = [n for n in nodes if not waiting[id(n)]]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for o in n.output:
            for r in readers.get(o, []):
                waiting[id(r)].discard(o)
                if not waiting[id(r)]:
                    ready.append(r)
    if len(order) != len(nodes):
        stuck = [n for n in nodes if waiting[id(n)]]
        names = ", ".join(f"{n.name or '<unnamed>'!r} ({n.op_type})" for n in stuck[:5])
        raise ModelError(
            f"{path}: the graph has a cycle: nodes {names}{' ...' if len(stuck) > 5 else ''} "
            "wait on each other's outputs; an ONNX graph must be acyclic"
        )
    return order


def fold_node(node: onnx.NodeProto, constants: dict[str, np.ndarray], opset: int):
    """Outputs of ``node`` computed from its constant inputs (onnx's reference evaluator)."""
    from onnx.reference import ReferenceEvaluator

    names = [v for v in node.input if v]
    graph = helper.make_graph(
        [node],
        "fold",
        [
            helper.make_tensor_value_info(
                v, helper.np_dtype_to_tensor_dtype(constants[v].dtype), None
            )
            for v in names
        ],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in node.output],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    outputs = ReferenceEvaluator(model).run(None, {v: constants[v] for v in names})
    return dict(zip(node.output, outputs, strict=True))


def _shape(value_info) -> tuple | None:
    t = value_info.type
    if t.WhichOneof("value") != "tensor_type" or not t.tensor_type.HasField("shape"):
        return None
    return tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in t.tensor_type.shape.dim
    )


def read_foreign(path: str | Path) -> ForeignGraph:
    """The model at ``path``, checked (see the module docstring) and upgraded."""
    path = Path(path)
    model = load_onnx(path)
    _check_tensors(model, path)
    for node in model.graph.node:
        for a in node.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise ModelError(
                    f"{path}: node {node.name!r} ({node.op_type}) holds a subgraph (control "
                    "flow); nnspec imports feed-forward graphs only"
                )
    model, source_opset = _upgrade(model, path)
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    known = init_names | {i.name for i in inputs}
    nodes = _order(list(graph.node), known, path)
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    for node in nodes:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Constant":
            try:
                constants[node.output[0]] = _constant_value(node)
            except (ValueError, KeyError) as e:
                raise ModelError(f"{path}: Constant node {node.name!r}: {e}") from None
        elif node.op_type in FOLDABLE and all(v in constants for v in node.input if v):
            try:
                constants.update(fold_node(node, constants, opset))
            except Exception as e:  # noqa: BLE001  the evaluator's errors for bad attributes
                raise ModelError(
                    f"{path}: node {node.name!r} ({node.op_type}) on constants failed: {e}"
                ) from None
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    except Exception:  # noqa: BLE001  inference is a help here, not a requirement
        values = [*graph.input, *graph.output]
    shapes = {v.name: s for v in values if (s := _shape(v)) is not None}
    for name, array in constants.items():
        shapes[name] = tuple(array.shape)
    for i in inputs:
        dims = _shape(i) or ()
        sample = [d for d in dims[1:] if isinstance(d, int)]
        if len(sample) == len(dims) - 1 and math.prod(sample) > MAX_SAMPLE_VALUES:
            raise ModelError(
                f"{path}: input {i.name!r} has dims {list(dims)}: {math.prod(sample):,} values "
                f"per sample, over the {MAX_SAMPLE_VALUES:,} nnspec accepts; refused"
            )
    producer = {o: n for n in nodes for o in n.output if o}
    consumers: dict[str, list] = {}
    for n in nodes:
        for v in n.input:
            consumers.setdefault(v, []).append(n)
    g = ForeignGraph(
        path, model, source_opset, nodes, producer, consumers, constants, shapes, inputs,
        list(graph.output),
    )  # fmt: skip
    g.position = {id(n): i for i, n in enumerate(nodes)}
    g.opset = opset
    return g


def _constant_value(node: onnx.NodeProto) -> np.ndarray:
    attrs = {a.name: a for a in node.attribute}
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"].t)
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in attrs:
            return np.array(helper.get_attribute_value(attrs[key]), dtype)
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.array(helper.get_attribute_value(attrs[key]), dtype)
    raise ValueError(f"expected a value, value_float(s) or value_int(s), got {sorted(attrs)}")
