"""docs/onnx.md: how each spec construct becomes ONNX nodes, read off real exports.

Every row of the tables comes from exporting a tiny spec that uses the construct and listing
the nodes and initializers that the export actually emitted for it (its nodes are named after
the layer, ``x/Gemm``; the frame's are ``preprocess/...``, ``postprocess/...``,
``probabilities``, ``label`` and ``prediction``). Only the "notes" column is written by hand:
for layers in each kind's registry record (``LayerKind.docs``, with the tiny specs), for
activations in the activation table. A test compares docs/onnx.md with ``onnx_reference()``
and checks that every layer kind and activation has a row, so the page cannot drift from the
exporter. The "Importing" section lists the patterns of ``nnspec import`` from its registry
(onnxio/import_patterns.py). Regenerate it with::

    python -m nnspec._docgen.onnx_md > docs/onnx.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import yaml

INTRO = """\
# How a spec becomes ONNX

What `nnspec train` and `nnspec compile` write for each construct of a spec: the ONNX nodes, in
graph order, with their attributes, and the initializers (weights and constants) they read.
Every row comes from exporting a tiny spec that uses the construct (shown in the second
column) and reading back what the exporter emitted, so the page always matches the code. Do
not edit it by hand: regenerate it with

```sh
python -m nnspec._docgen.onnx_md > docs/onnx.md
```

The exported graph has one input, `input`: float32 `(batch, features)`, or
`(batch, channels, height, width)` for images, in the data's own units (a spec with categorical
or imputed columns takes one input per raw column instead: see the last section). Nodes are
named after the layer that made them (`conv1/Conv`, `conv1/relu`), which is how they read in
Netron; the layer's weights are initializers named `<layer>.weight`, `<layer>.bias` and so on.
The opset is
`export.opset` (18 by default), with the lowest IR version that the opset needs.
`onnx.checker.check_model(full_check=True)` and strict shape inference pass on every model
before it is written, and every trained model is compared with the NumPy network in
onnxruntime (rtol 1e-4, atol 1e-5).
"""


@dataclass(frozen=True)
class Case:
    """One row: a construct, the spec text that shows it, and a spec to export."""

    construct: str  # Markdown
    shown: str  # the construct as written in a spec (YAML)
    layers: tuple[str, ...]  # the spec's layers, YAML flow mappings
    show: tuple[str, ...]  # node-name prefixes that belong to the construct
    note: str = ""
    input: str = "{features: 3}"
    task: str = "classification"
    loss: str = "cross_entropy"
    extra: str = ""  # more top-level YAML (preprocess, ...)


_OUT = "{kind: dense, name: out, units: 3, activation: softmax}"
_FLAT = "{kind: flatten, name: flat}"
_IMAGE = "{shape: [4, 6, 6]}"


def _layer(case) -> Case:
    """A kind's ``DocCase``: the layer named ``x`` between the input and a softmax output, with
    a flatten before the output when the layer's own output is not flat."""
    from ..layers import LAYERS

    fields = yaml.safe_load(case.shown)
    spec = LAYERS[fields["kind"]].spec.model_validate(fields)
    flat = len(spec.output_shape((None, 4, 6, 6) if case.image else (None, 3))) == 2
    layers = (case.shown, _OUT) if flat else (case.shown, _FLAT, _OUT)
    return Case(
        case.construct,
        case.shown,
        layers,
        ("x",),
        case.note,
        input=_IMAGE if case.image else "{features: 3}",
    )


def layer_cases(kind: str | None = None) -> list[Case]:
    """The rows of the layer table: each registered kind's doc cases, in registry order (or
    only those of ``kind``)."""
    from ..layers import LAYERS

    kinds = LAYERS.values() if kind is None else [LAYERS[kind]]
    return [_layer(case) for k in kinds for case in k.docs]


FRAME = [
    Case(
        "standardized inputs",
        "preprocess: {standardize: true}",
        (_OUT,),
        ("preprocess",),
        "Statistics fitted on the training split (per feature; per channel for images), stored "
        "as initializers. The inputs of the model stay in the data's own units.",
        extra="preprocess: {standardize: true}",
    ),
    Case(
        "no standardization",
        "preprocess: {standardize: false}",
        (_OUT,),
        ("preprocess",),
        "The first layer reads `input` directly.",
    ),
    Case(
        "classification output",
        "task: classification\nlast layer: softmax\nloss: cross_entropy",
        (_OUT,),
        ("out", "probabilities", "label"),
        "Outputs `probabilities` float32 `(batch, classes)` and `label` int64 `(batch,)`, the "
        "index of the class in `classes` (the model's metadata lists their names). "
        "Cross-entropy is fused with softmax in training only; the graph has the plain Softmax.",
    ),
    Case(
        "binary classification with one logistic unit",
        "last layer: {units: 1, activation: logistic}\nloss: binary_cross_entropy",
        ("{kind: dense, name: out, units: 1, activation: logistic}",),
        ("out", "postprocess", "probabilities", "label"),
        "The unit's p = P(second class) becomes the two columns [1 - p, p], so every "
        "classifier has the same outputs.",
        loss="binary_cross_entropy",
    ),
    Case(
        "regression output",
        "task: regression\nloss: mse",
        ("{kind: dense, name: out, units: 2}",),
        ("out", "postprocess", "prediction"),
        "Output `prediction` float32 `(batch, outputs)`.",
        task="regression",
        loss="mse",
    ),
    Case(
        "target scaling",
        "task: regression\npreprocess: {standardize_target: true}",
        ("{kind: dense, name: out, units: 2}",),
        ("out", "postprocess", "prediction"),
        "Training sees standardized targets; the graph scales the prediction back to the "
        "target's own units.",
        task="regression",
        loss="mse",
        extra="preprocess: {standardize: false, standardize_target: true}",
    ),
]


def _activation_cases() -> list[Case]:
    from ..nn.activations import ACTIVATIONS

    cases = []
    for name, act in ACTIVATIONS.items():
        shown = f"{{kind: dense, name: x, units: 3, activation: {name}}}"
        layers = (shown,) if act.output_only else (shown, _OUT)
        cases.append(Case(f"`{name}`", f"activation: {name}", layers, ("x",), act.doc_note))
    return cases


# -- exporting and reading back -----------------------------------------------------------------


def _spec_text(case: Case) -> str:
    lines = [
        "spec_version: 1",
        "name: onnx-doc",
        f"task: {case.task}",
        f"input: {case.input}",
    ]
    if case.task == "classification":
        units = 1 if "units: 1," in case.layers[-1] else 3
        lines.append("classes: [a, b]" if units == 1 else "classes: [a, b, c]")
    lines.append(case.extra or "preprocess: {standardize: false}")
    lines.append("layers:")
    lines += [f"  - {layer}" for layer in case.layers]
    lines.append(f"loss: {case.loss}")
    return "\n".join(lines) + "\n"


def _export(case: Case):
    from ..pipeline import build_network, export
    from ..spec.models import load_spec

    return export(build_network(load_spec(_spec_text(case))))


def _value(v) -> str:
    if isinstance(v, float):
        return str(np.float32(v))  # as stored: 0.01, not 0.009999999776482582
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, bytes):
        return v.decode()
    return str(v)


def _belongs(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + "/") or name.startswith(p + ".") for p in prefixes)


def _emitted(case: Case) -> tuple[str, str]:
    """(nodes, initializers) that the export of ``case`` has for its construct, as Markdown."""
    from ..onnxio.inspect import graph_listing

    nodes, inits = graph_listing(_export(case))
    shown = []
    for node in nodes:
        if _belongs(node["name"], case.show):
            attrs = ", ".join(f"{k}={_value(v)}" for k, v in node["attributes"].items())
            shown.append(f"`{node['op_type']}`" + (f" ({attrs})" if attrs else ""))
    weights = [
        f"`{t['name']}` {'×'.join(str(d) for d in t['dims']) or 'scalar'}"
        for t in inits
        if _belongs(t["name"], case.show)
    ]
    return " → ".join(shown) or "none", ", ".join(weights) or "none"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _spec_cell(shown: str) -> str:
    return "<br>".join(f"`{line}`" for line in shown.splitlines())


def _table(cases: list[Case], first: str) -> str:
    lines = [
        f"| {first} | in the spec | ONNX nodes, in order | initializers | notes |",
        "|---|---|---|---|---|",
    ]
    for case in cases:
        nodes, inits = _emitted(case)
        lines.append(
            f"| {_cell(case.construct)} | {_spec_cell(case.shown)} | {_cell(nodes)} "
            f"| {_cell(inits)} | {_cell(case.note)} |"
        )
    return "\n".join(lines) + "\n"


IMPORTING = """\
## Importing

`nnspec import MODEL.onnx -o SPEC.yaml` goes the other way: a model written by
`torch.onnx.export` (the TorchScript exporter, `dynamo=False`, opsets 9 to 17, and the dynamo
exporter, IR 10, opset 18 and up), by skl2onnx (`MLPClassifier` with or without ZipMap,
`MLPRegressor`, a `StandardScaler` before them) or by nnspec itself becomes a spec with `init:
{from: SPEC.weights.npz}` and that weights file beside it. A model older than opset 13 is
upgraded with `onnx.version_converter` first. The graph's main output (its float output; behind
a ZipMap, the ZipMap's input) is followed back to the input, each node through one of the
patterns below; the nodes must form a chain. Off the chain, only a classifier's label tail is
allowed (ArgMax, ArrayFeatureExtractor of the class labels, which become `classes`, ZipMap,
Cast, Reshape and shape arithmetic), and the labels it gives are checked too. A binary
classifier's `Concat(1 - p, p)` of a Sigmoid unit (skl2onnx, nnspec) is one logistic unit with
`loss: binary_cross_entropy`. Weights held in Constant nodes, or computed from constants by
Transpose, Reshape, Cast and the like, are weights. Anything else is an error that names the
node, its op type, where it sits and the supported ops, and nothing is written. Before writing,
the spec is compiled and run in onnxruntime against the source on seeded inputs (rtol 1e-4, atol
1e-5).

A model whose output is a linear layer's (logits) imports as regression, whose `prediction` is
that output; `--task classification` makes it a classifier with a softmax added (then checked
against the softmax of the source's output). Layer names come from the graph: torch's
`features.0.weight` or `/features/features.0/Conv` give `features.0`.
"""


def _importing() -> str:
    from ..onnxio.import_patterns import PATTERNS

    lines = ["| ONNX | ops | in the spec |", "|---|---|---|"]
    seen = []
    for pattern in PATTERNS.values():
        if pattern in seen:
            continue
        seen.append(pattern)
        ops = ", ".join(f"`{o}`" for o, p in PATTERNS.items() if p is pattern)
        lines.append(f"| {_cell(pattern.pattern)} | {ops} | {_cell(pattern.becomes)} |")
    return IMPORTING + "\n" + "\n".join(lines) + "\n"


# -- tabular models ---------------------------------------------------------------------------

TABULAR_SPEC = """\
spec_version: 1
name: onnx-doc-tabular
task: classification
input: {features: 5}
classes: [a, b, c]
preprocess: {categorical: [origin], impute: {strategy: median}}
layers:
  - {kind: dense, name: out, units: 3, activation: softmax}
loss: cross_entropy
"""

TABULAR_INTRO = """\
A spec with `preprocess.categorical` or `preprocess.impute` trains on a table's raw columns,
and its graph takes them raw: **one input per feature column, named after the column, of
shape `(batch,)`**: float32 for a numeric column (NaN for a missing value), string for a
categorical one (the category's text; integers as their digits, `"4"`; `""` for a missing
value). The graph imputes, one-hot encodes and concatenates them into the `(batch, features)`
rows of the first layer: the numeric columns in feature order, then each categorical column's
categories (sorted, as fitted on the training split), so the standardization that follows
(`preprocess/Sub`, `preprocess/Div`, mean 0 and scale 1 for the one-hot columns) applies to the
numeric columns only. The model's metadata `nnspec_tabular` lists the columns in that order,
with each fill value and category list; `nnspec inspect` prints them.

An unknown category, and a missing one, has the LabelEncoder's default index -1, which equals
no position: all zeros, as scikit-learn's `OneHotEncoder(handle_unknown="ignore")`. With
`preprocess.unknown: error` nnspec_runtime (and `nnspec predict`) refuse such a row, naming
the column and the row, before the graph runs; plain onnxruntime still gets all zeros. The
category lookup is ai.onnx.ml's `LabelEncoder` (opset 2) because ONNX's `Equal` takes strings
only from opset 19 and nnspec exports opsets 13-22; onnxruntime's CPU provider runs every node
here. On CUDA the string inputs and the LabelEncoder stay on the CPU (it has no CUDA kernel),
so `strict=True` refuses a model with categorical columns.

These rows come from a model with numeric columns `horsepower` (imputed) and `weight`, and a
categorical column `origin` with the categories `europe`, `japan`, `usa` (every `Unsqueeze`
reads the one int64 initializer `tabular.axis1`, `[1]`):
"""

TABULAR_EXAMPLE = """\
With plain onnxruntime (no nnspec installed), one array per column:

```python
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("cars.onnx", providers=["CPUExecutionProvider"])
feeds = {
    "horsepower": np.array([130.0, np.nan], dtype=np.float32),  # NaN: imputed in the graph
    "weight": np.array([3504.0, 2130.0], dtype=np.float32),
    "origin": np.array(["usa", "japan"], dtype=object),  # strings; unknown ones: all zeros
}
probabilities, label = session.run(["probabilities", "label"], feeds)
```

`[i.name for i in session.get_inputs()]` lists the columns the model takes. nnspec_runtime
does the same from a pandas DataFrame, a dict of columns or `csv.DictReader` rows
(`Model("cars.onnx").predict(df)`), and checks them first.
"""


def tabular_doc_network():
    """The untrained network of TABULAR_SPEC with the encoder the section describes."""
    from ..data.tabular import Imputation, TabularEncoder
    from ..pipeline import build_network
    from ..spec.models import load_spec

    network = build_network(load_spec(TABULAR_SPEC))
    network.tabular = TabularEncoder(
        ["horsepower", "weight"],
        ["origin"],
        {"origin": ["europe", "japan", "usa"]},
        {"horsepower": 93.5},
        {"horsepower": Imputation("median")},
    )
    return network


def _tabular_table() -> str:
    """The tabular front of a real export, one row per column kind."""
    from ..onnxio.inspect import graph_listing
    from ..pipeline import export

    nodes, inits = graph_listing(export(tabular_doc_network()))
    rows = [
        ("numeric, imputed", "`horsepower` float32 `(batch,)`", "tabular/horsepower"),
        ("numeric", "`weight` float32 `(batch,)`", "tabular/weight"),
        ("categorical", "`origin` string `(batch,)`", "tabular/origin"),
        ("all columns", "", "tabular/Concat"),
    ]
    lines = ["| column | graph input | ONNX nodes, in order | initializers |", "|---|---|---|---|"]
    for what, given, prefix in rows:
        shown = []
        for node in nodes:
            if node["name"] == prefix or node["name"].startswith(prefix + "/"):
                attrs = ", ".join(f"{k}={_value(v)}" for k, v in node["attributes"].items())
                shown.append(f"`{node['op_type']}`" + (f" ({attrs})" if attrs else ""))
        dotted = prefix.replace("tabular/", "tabular.")
        weights = [
            f"`{t['name']}` {'×'.join(str(d) for d in t['dims']) or 'scalar'}"
            for t in inits
            if t["name"].startswith(dotted + ".")
        ]
        lines.append(
            f"| {what} | {given or 'none'} | {_cell(' → '.join(shown))} "
            f"| {_cell(', '.join(weights)) or 'none'} |"
        )
    return "\n".join(lines) + "\n"


def onnx_reference() -> str:
    """The Markdown of docs/onnx.md, from real exports of tiny specs."""
    parts = [
        INTRO,
        "## Inputs, preprocessing and outputs\n",
        "The example specs end in a dense layer named `out`; these rows show what surrounds "
        "the layers.\n",
        _table(FRAME, "construct"),
        "## Layers\n",
        "Each row is one layer named `x` between the input and a softmax output (after a "
        "flatten for image layers: the input there is 4×6×6 images).\n",
        _table(layer_cases(), "layer"),
        "## Activations\n",
        "On a dense layer named `x`; a `conv2d` layer's activation is lowered the same way, "
        "after its Conv.\n",
        _table(_activation_cases(), "activation"),
        "## Tabular models: raw columns in\n",
        TABULAR_INTRO,
        _tabular_table(),
        TABULAR_EXAMPLE,
        _importing(),
    ]
    return "\n".join(parts)


def print_onnx_md() -> int:
    """Print the page: ``python -m nnspec._docgen.onnx_md > docs/onnx.md``."""
    sys.stdout.write(onnx_reference())
    return 0


if __name__ == "__main__":
    raise SystemExit(print_onnx_md())
