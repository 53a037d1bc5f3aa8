"""``nnspec import``: a foreign ONNX model in, a spec and its weights out, checked first.

The walk: the graph's main output (its float output; behind a ZipMap, the ZipMap's input;
a binary classifier's ``Concat(1 - p, p)`` is one logistic unit) is followed back to the
input through each node's one data input, which must form a chain (nnspec's layers do). Every
chain node goes through its pattern (import_patterns.py). The nodes off the chain may only
compute labels (ArgMax, ArrayFeatureExtractor of the class labels, ZipMap, casts and
reshapes) or shapes. Anything else is refused with the node named, its op type, where it
sits and the list of supported ops, before anything is written.

The weights go into ``<spec stem>.weights.npz`` beside the spec (saved without pickle), named
``<layer>.<param>`` in nnspec's layouts (dense weights (in, out), a Gemm's transposed B
transposed back, batchnorms folded where an activation follows them) with the input
standardization as ``preprocess.mean``/``preprocess.scale``: exactly what ``init.from`` reads.
The spec says ``init: {from: <stem>.weights.npz}``. A foreign model's own initializers could
not serve: their names and layouts are the exporter's, and folded or transposed weights are
not in it at all.

The check: the spec is compiled (init.from and all, as ``nnspec compile`` would) from a
staging folder, and the compiled model and the source model run in onnxruntime on the same
seeded inputs; they must agree within rtol 1e-4, atol 1e-5 (the labels exactly) before the
two files are renamed into place.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import yaml

from ..errors import ModelError, NnspecError, ParityError
from .import_graph import ForeignGraph, read_foreign
from .import_patterns import PATTERNS, ImportState, Unsupported, attrs
from .parity import ATOL, RTOL, compare

# Nodes off the main chain that may compute the label output (and shapes): their results are
# checked against the compiled model's labels.
TAIL_OPS = frozenset(
    {
        "ArgMax", "ArrayFeatureExtractor", "ZipMap", "Reshape", "Cast", "Identity", "Squeeze",
        "Flatten", "Shape", "Gather", "Unsqueeze", "Concat", "Slice", "Constant",
        "ConstantOfShape",
    }
)  # fmt: skip
CHECK_SEED = 0
CHECK_SAMPLES = 16


@dataclass
class Imported:
    """What import made of a model: the spec's parts, the weights, and the check's numbers."""

    source: Path
    graph: ForeignGraph
    state: ImportState
    task: str
    classes: list[str] | None
    binary: bool
    notes: list[str] = field(default_factory=list)
    check: dict = field(default_factory=dict)
    loss: str = "mse"

    def weights(self) -> dict[str, np.ndarray]:
        out = {}
        for layer in self.state.layers:
            for k, a in layer.arrays.items():
                out[f"{layer.name}.{k}"] = np.ascontiguousarray(a, np.float32)
        st = self.state
        if st.pre_a is not None:
            # x' = a x + b = (x - mean) / scale  with  scale = 1 / a, mean = -b / a.
            mean, scale = -st.pre_b / st.pre_a, 1.0 / st.pre_a
            shape = (len(mean),) if len(st.graph_input_shape) == 1 else (len(mean), 1, 1)
            out["preprocess.mean"] = mean.reshape(shape).astype(np.float32)
            out["preprocess.scale"] = scale.reshape(shape).astype(np.float32)
        return out

    def param_count(self) -> int:
        return sum(a.size for layer in self.state.layers for a in layer.arrays.values())


def _unsupported(g: ForeignGraph, node, why: str) -> ModelError:
    ops = ", ".join(sorted(PATTERNS))
    return ModelError(
        f"{g.path}: {g.where(node)}: cannot be imported: {why}. Supported on the path from the "
        f"input to the output: {ops}; off it, only the label tail ({', '.join(sorted(TAIL_OPS))})"
    )


def _is_float_tensor(v: onnx.ValueInfoProto) -> bool:
    t = v.type
    return t.WhichOneof("value") == "tensor_type" and t.tensor_type.elem_type in (
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.FLOAT16,
    )


def _main_output(g: ForeignGraph) -> tuple[str, bool]:
    """The value nnspec's probabilities or prediction stand for, and whether it is a binary
    classifier's [1 - p, p] (then the returned value is p)."""
    floats = [o for o in g.outputs if _is_float_tensor(o)]
    if len(floats) == 1:
        main = floats[0].name
    elif not floats:
        zipmaps = [g.producer[o.name] for o in g.outputs if o.name in g.producer
                   and g.producer[o.name].op_type == "ZipMap"]  # fmt: skip
        if len(zipmaps) != 1:
            raise ModelError(
                f"{g.path}: expected one float output (probabilities or predictions), got "
                f"{', '.join(repr(o.name) for o in g.outputs)}"
            )
        main = zipmaps[0].input[0]
    else:
        raise ModelError(
            f"{g.path}: has {len(floats)} float outputs ({', '.join(o.name for o in floats)}); "
            "nnspec imports a network with one (plus, for a classifier, its label)"
        )
    node = g.producer.get(main)
    while node is not None and node.op_type == "Identity":
        node = g.producer.get(node.input[0])
    if node is not None and node.op_type == "Concat" and len(node.input) == 2:
        q, p = node.input
        sub = g.producer.get(q)
        if (
            attrs(node).get("axis") in (1, -1)
            and sub is not None
            and sub.op_type == "Sub"
            and sub.input[1] == p
            and g.is_constant(sub.input[0])
            and np.all(g.constant(sub.input[0]) == 1)
        ):
            return p, True
    return main, False


def _data_inputs(g: ForeignGraph, node) -> list[str]:
    if node.op_type in ("Reshape", "Squeeze", "Unsqueeze", "Expand"):
        names = node.input[:1]
    else:
        names = node.input
    out = []
    for v in names:
        if v and not g.is_constant(v) and v not in out:
            out.append(v)
    return out


def _chain(g: ForeignGraph, main: str, x_in: str) -> list:
    chain, v = [], main
    while v != x_in:
        node = g.producer.get(v)
        if node is None:
            raise ModelError(f"{g.path}: the output {main!r} does not depend on the input {x_in!r}")
        data = _data_inputs(g, node)
        if len(data) != 1:
            raise _unsupported(
                g,
                node,
                f"it reads {len(data)} computed values ({', '.join(data) or 'none'}); nnspec "
                "layers form a chain, each reading the one before (no branches or skips)",
            )
        chain.append(node)
        v = data[0]
    return chain[::-1]


def _ancestors(g: ForeignGraph, values) -> set[int]:
    seen, stack = set(), list(values)
    while stack:
        node = g.producer.get(stack.pop())
        if node is not None and id(node) not in seen:
            seen.add(id(node))
            stack += [v for v in node.input if v]
    return seen


def _quiet(message: str) -> None:
    """The default ``say``: long imports (AlexNet: 15 s) report their stages only when asked."""


def import_graph(
    path: str | Path, task: str | None = None, classes=None, say: Callable = _quiet
) -> Imported:
    """Read and match the model at ``path`` (nothing is written; see ``write_import``).
    ``say(message)`` hears each stage."""
    say(f"reading and checking {path}")
    g = read_foreign(path)
    say(f"matching {len(g.nodes)} nodes")
    if len(g.inputs) != 1:
        raise ModelError(
            f"{g.path}: has {len(g.inputs)} inputs ({', '.join(i.name for i in g.inputs)}); "
            "nnspec imports a network with one"
        )
    x_in = g.inputs[0]
    dims = g.shapes.get(x_in.name)
    if not _is_float_tensor(x_in) or not dims or len(dims) not in (2, 4):
        raise ModelError(
            f"{g.path}: input {x_in.name!r} is {onnx.helper.printable_type(x_in.type)}; "
            "expected float (batch, features) or (batch, channels, height, width)"
        )
    if not all(isinstance(d, int) and d > 0 for d in dims[1:]):
        raise ModelError(
            f"{g.path}: input {x_in.name!r} has dims {list(dims)}; nnspec needs every size "
            "but the batch fixed"
        )
    main, binary = _main_output(g)
    chain = _chain(g, main, x_in.name)
    st = ImportState(g, (None, *dims[1:]), graph_input_shape=tuple(dims[1:]))
    for node in chain:
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        pattern = PATTERNS.get(op)
        if pattern is None:
            raise _unsupported(
                g, node, f"no pattern for {node.domain + '.' if node.domain else ''}{node.op_type}"
            )
        if st.output is not None and node.op_type != "Identity":
            raise _unsupported(g, node, "it comes after the output's softmax")
        if st.gaussian_step and node.op_type not in ("Mul", "Exp"):
            raise _unsupported(g, node, "it interrupts a gaussian exp(-0.5 z²)")
        try:
            pattern.handler(st, node, _data_inputs(g, node)[0])
        except Unsupported as e:
            raise _unsupported(g, node, str(e)) from None
    on_path = {id(n) for n in chain} | _ancestors(g, [main])
    label_tail = []
    for node in g.nodes:
        if id(node) in on_path or all(o in g.constants for o in node.output):
            continue
        if node.op_type not in TAIL_OPS and not (binary and node.op_type in ("Sub", "Concat")):
            raise _unsupported(g, node, f"it is off the path from {x_in.name!r} to {main!r}")
        label_tail.append(node)
    notes = []
    if binary:
        concat = next(n for n in g.nodes if n.op_type == "Concat" and main in n.input)
        st.note(concat, "output: one logistic unit's p as probabilities [1 - p, p]")
    if isinstance(dims[0], int):
        notes.append(
            f"the source's batch size is fixed at {dims[0]}; the spec's is free (checked at "
            f"{dims[0]})"
        )
    if not st.layers or st.last.kind != "dense":
        raise ModelError(
            f"{g.path}: the output {main!r} does not come from a dense (Gemm or MatMul) layer; "
            "nnspec's output layer is dense"
        )
    found_classes = _classes(g, label_tail)
    has_label = any(
        not _is_float_tensor(o) and o.type.WhichOneof("value") == "tensor_type" for o in g.outputs
    )
    if st.output or binary or found_classes is not None or has_label:
        if task == "regression":
            raise ModelError(
                f"{g.path}: the model is a classifier (it has a softmax or a label output); "
                "--task regression does not apply"
            )
        task = "classification"
    elif task is None:
        task = "regression"
        notes.append(
            f"the output {main!r} is a linear layer's (logits or predictions): imported as "
            "regression, whose prediction is that output; --task classification adds a softmax "
            "(checked against the softmax of the source's output)"
        )
    if binary and st.last.fields.get("activation") != "logistic":
        raise ModelError(f"{g.path}: the [1 - p, p] output needs a logistic p")
    units = st.shape[1]
    loss = "mse"
    if task == "classification":
        out_act = st.last.fields.get("activation", "identity")
        if binary:
            loss = "binary_cross_entropy"
        elif st.output is not None:
            loss = "cross_entropy"
        elif out_act == "identity":
            st.last.fields["activation"] = "softmax"
            notes.append(f"softmax added after {st.last.name}: the source outputs logits")
            st.output = "logits"
            loss = "cross_entropy"
        else:
            # Per-class scores such as logistic units (trained on one-hot targets): nnspec
            # calls that classification with mse, and the label is their argmax.
            loss = "mse"
        n = 2 if binary else units
        names = classes or found_classes or _metadata_classes(g) or [str(i) for i in range(n)]
        if len(names) != n:
            raise ModelError(f"{g.path}: {len(names)} class names for {n} outputs")
        classes = [str(c) for c in names]
    if g.source_opset < 13:
        notes.append(f"opset {g.source_opset} upgraded to 13 by onnx.version_converter")
    imported = Imported(Path(path), g, st, task, classes, binary, notes)
    imported.loss = loss
    return imported


def _metadata_classes(g: ForeignGraph) -> list[str] | None:
    """The class names an nnspec export records in its metadata."""
    import json

    for p in g.model.metadata_props:
        if p.key == "nnspec_class_names":
            try:
                names = json.loads(p.value)
            except ValueError:
                return None
            return [str(n) for n in names] if isinstance(names, list) else None
    return None


def _classes(g: ForeignGraph, tail: list) -> list[str] | None:
    for node in tail:
        if node.op_type == "ArrayFeatureExtractor" and g.is_constant(node.input[0]):
            values = g.constant(node.input[0]).reshape(-1)
            return [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
    for node in tail:
        if node.op_type == "ZipMap":
            a = attrs(node)
            labels = a.get("classlabels_strings") or a.get("classlabels_int64s")
            if labels:
                return [v.decode() if isinstance(v, bytes) else str(v) for v in labels]
    return None


# -- the spec text --------------------------------------------------------------------------


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        text = repr(v)
        if "e" in text and "." not in text.split("e")[0]:
            m, e = text.split("e")
            text = f"{m}.0e{e}"  # YAML 1.1 (PyYAML) reads 1e-05 as a string, 1.0e-05 as a float
        return text
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    text = str(v)
    try:
        plain = yaml.safe_load(text) == text and not any(c in text for c in ":#,[]{}&*!|>'\"%@`")
    except yaml.YAMLError:
        plain = False
    return text if plain and text.strip() == text and text else json_quote(text)


def json_quote(text: str) -> str:
    import json

    return json.dumps(text)


def spec_text(imp: Imported, weights_file: str) -> str:
    g, st = imp.graph, imp.state
    producer = " ".join(p for p in (g.model.producer_name, g.model.producer_version) if p)
    stem = "".join(c if c.isalnum() or c in "_.-" else "-" for c in imp.source.stem) or "imported"
    shape = st.graph_input_shape
    origin = f"{producer}, opset {g.source_opset}" if producer else f"opset {g.source_opset}"
    header = (
        f"Imported by nnspec import from {imp.source.name} ({origin}). The weights are in "
        f"{weights_file} beside this file, loaded by init.from. To fine-tune: add data, set "
        "trainable: false on the layers to keep, and rename (or resize) the last layer for new "
        "classes, which then starts fresh (README: Importing pretrained models)."
    )
    lines = textwrap.wrap(header, 96, initial_indent="# ", subsequent_indent="# ")
    for n in imp.notes:
        lines += textwrap.wrap(n, 96, initial_indent="# note: ", subsequent_indent="#   ")
    lines += [
        "spec_version: 1",
        f"name: {_scalar(stem)}",
        f"task: {imp.task}",
        "input: {"
        + (f"features: {shape[0]}" if len(shape) == 1 else f"shape: {list(shape)}")
        + "}",
    ]
    if imp.classes is not None:
        lines.append(f"classes: [{', '.join(_scalar(c) for c in imp.classes)}]")
    lines.append("init: {from: " + _scalar(weights_file) + "}")
    lines.append(f"preprocess: {{standardize: {'true' if st.pre_a is not None else 'false'}}}")
    lines.append("layers:")
    for layer in st.layers:
        items = [f"kind: {layer.kind}", f"name: {_scalar(layer.name)}"]
        items += [f"{k}: {_scalar(v)}" for k, v in layer.fields.items()]
        lines.append("  - {" + ", ".join(items) + "}")
    lines.append(f"loss: {imp.loss}")
    return "\n".join(lines) + "\n"


# -- the check ------------------------------------------------------------------------------


def _source_session(imp: Imported, compare_value: str):
    """onnxruntime on the source model as the file has it, with ``compare_value`` (the value
    nnspec's probabilities or prediction stand for) among its outputs."""
    import onnxruntime as ort

    from .load import check_external_data, load_onnx

    model = load_onnx(imp.source)  # a regular file, through nnspec.untrusted
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        from onnx.external_data_helper import load_external_data_for_model

        check_external_data(imp.source, model)  # inside its folder, regular files, long enough
        load_external_data_for_model(model, str(imp.source.parent))
    if compare_value not in {o.name for o in model.graph.output}:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(compare_value, onnx.TensorProto.FLOAT, None)
        )
    try:
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001  onnxruntime's own errors for models it refuses
        raise ModelError(f"{imp.source}: onnxruntime cannot run the source model: {e}") from None


def check_import(imp: Imported, compiled: onnx.ModelProto) -> dict:
    """Run the source and the compiled model on the same seeded inputs; raise on a mismatch."""
    import onnxruntime as ort

    g, st = imp.graph, imp.state
    x_in = g.inputs[0]
    dims = g.shapes[x_in.name]
    batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else CHECK_SAMPLES
    rng = np.random.default_rng(CHECK_SEED)
    x = rng.standard_normal((batch, *dims[1:]))
    w = imp.weights()
    if "preprocess.mean" in w:
        x = w["preprocess.mean"] + w["preprocess.scale"] * x
    x = x.astype(np.float32)
    main, _ = _main_output(g)
    # A binary classifier is compared on its [1 - p, p] output, the graph's float output.
    compare_value = next(o.name for o in g.outputs if _is_float_tensor(o)) if imp.binary else main
    source = _source_session(imp, compare_value)
    feed_type = source.get_inputs()[0].type
    names = [o.name for o in source.get_outputs()]
    got = source.run(None, {x_in.name: x.astype(np.float64) if "double" in feed_type else x})
    outputs = dict(zip(names, got, strict=True))
    want = np.asarray(outputs[compare_value], np.float64)
    if st.output == "logits":
        z = want - want.max(axis=1, keepdims=True)
        want = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    elif st.output == "log_softmax":
        want = np.exp(want)
    ours = ort.InferenceSession(compiled.SerializeToString(), providers=["CPUExecutionProvider"])
    mine = dict(
        zip([o.name for o in ours.get_outputs()], ours.run(None, {"input": x}), strict=True)
    )
    key = "prediction" if imp.task == "regression" else "probabilities"
    if mine[key].shape != want.shape:
        raise ParityError(
            f"{imp.source}: the imported spec gives {key} of shape {mine[key].shape}, the model "
            f"{compare_value!r} of shape {want.shape} on {batch} seeded inputs; nothing written"
        )
    result = compare(mine[key], want)
    result.update({"samples": int(batch), "rtol": RTOL, "atol": ATOL, "compared": compare_value})
    if result["worst_ratio"] > 1:
        raise ParityError(
            f"{imp.source}: the imported spec does not reproduce the model on {batch} seeded "
            f"inputs: max abs error {result['max_abs_err']:.3g}, max rel error "
            f"{result['max_rel_err']:.3g} (allowed rtol {RTOL}, atol {ATOL}); nothing written"
        )
    labels = [o.name for o in g.outputs if not _is_float_tensor(o)
              and o.type.WhichOneof("value") == "tensor_type"]  # fmt: skip
    for name in labels:
        theirs = [v.decode() if isinstance(v, bytes) else str(v)
                  for v in np.asarray(outputs[name]).reshape(-1).tolist()]  # fmt: skip
        index = mine["label"].reshape(-1)
        expected = [imp.classes[i] for i in index]
        # A label tail with the class labels gives names; a bare ArgMax (nnspec's) indices.
        if theirs != expected and theirs != [str(i) for i in index]:
            bad = sum(a != b for a, b in zip(theirs, expected, strict=True))
            raise ParityError(
                f"{imp.source}: the output {name!r} gives other labels than the imported spec "
                f"on {bad} of {batch} seeded inputs; nothing written"
            )
        result["labels"] = name
    return result


def write_import(
    imp: Imported,
    spec_path: str | Path,
    compile_spec: Callable[[Path], tuple[onnx.ModelProto, list[str]]],
    force: bool = False,
    say: Callable = _quiet,
) -> dict:
    """Write the spec and its weights, compiled and checked first in a staging folder beside
    ``spec_path``; both files appear together (renamed into place) or neither does.

    ``compile_spec(staged spec path)`` is ``nnspec compile`` in memory (the pipeline passes
    it: this stage sits below the orchestrator): the exported model and the layers that
    ``init.from`` loaded."""
    spec_path = Path(spec_path)
    weights_path = spec_path.with_name(spec_path.stem + ".weights.npz")
    for p in (spec_path, weights_path):
        if p.exists() and not force:
            raise NnspecError(f"{p}: exists; pass --force to overwrite it")
    if not spec_path.parent.is_dir():
        raise NnspecError(f"{spec_path.parent}: no such directory")
    text = spec_text(imp, weights_path.name)
    with tempfile.TemporaryDirectory(dir=spec_path.parent, prefix=".nnspec-import-") as tmp:
        staged_spec, staged_weights = Path(tmp) / spec_path.name, Path(tmp) / weights_path.name
        weights = imp.weights()
        say(f"writing {sum(a.nbytes for a in weights.values()) / 1e6:.1f} MB of weights (staged)")
        with open(staged_weights, "wb") as f:
            np.savez(f, **weights)
            f.flush()
            os.fsync(f.fileno())
        staged_spec.write_text(text, encoding="utf-8")
        say("compiling the spec (init.from the weights, as nnspec compile does)")
        compiled, loaded = compile_spec(staged_spec)
        missing = [la.name for la in imp.state.layers if la.arrays and la.name not in loaded]
        if missing:
            raise ModelError(f"{imp.source}: init.from did not load {', '.join(missing)}")
        say("running the source and the compiled spec in onnxruntime")
        imp.check = check_import(imp, compiled)
        imp.check["nnspec_parity"] = _parity_of(compiled)
        os.replace(staged_weights, weights_path)
        os.replace(staged_spec, spec_path)
    return imp.check


def _parity_of(model: onnx.ModelProto) -> dict | None:
    import json

    for p in model.metadata_props:
        if p.key == "nnspec_parity":
            return json.loads(p.value)
    return None


def table(imp: Imported) -> str:
    """The recognised nodes, one row each: node, op type, what it became."""
    rows = [("node", "op", "becomes")] + list(imp.state.rows)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out = []
    for k, r in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if k == 0:
            out.append("-" * (sum(widths) + 4))
    return "\n".join(out)


__all__ = ["Imported", "check_import", "import_graph", "spec_text", "table", "write_import"]
