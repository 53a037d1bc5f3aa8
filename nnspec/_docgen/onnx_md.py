"""docs/onnx.md: how each spec construct becomes ONNX nodes, read off real exports.

Every row of the tables comes from exporting a tiny spec that uses the construct and listing
the nodes and initializers that the export actually emitted for it (its nodes are named after
the layer, ``x/Gemm``; the frame's are ``preprocess/...``, ``postprocess/...``,
``probabilities``, ``label`` and ``prediction``). Only the "notes" column is written by hand.
A test compares docs/onnx.md with ``onnx_reference()`` and checks that every layer kind and
activation has a row, so the page cannot drift from the exporter. Regenerate it with::

    python -m nnspec._docgen.onnx_md > docs/onnx.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

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
`(batch, channels, height, width)` for images, in the data's own units. Nodes are named after
the layer that made them (`conv1/Conv`, `conv1/relu`), which is how they read in Netron; the
layer's weights are initializers named `<layer>.weight`, `<layer>.bias` and so on. The opset is
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


def _layer(shown: str, construct: str, note: str = "", image: bool = False) -> Case:
    """A layer named ``x`` between the input and a softmax output (a flatten first for images)."""
    layers = (shown, _FLAT, _OUT) if image else (shown, _OUT)
    return Case(construct, shown, layers, ("x",), note, input=_IMAGE if image else "{features: 3}")


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

LAYERS = [
    _layer("{kind: dense, name: x, units: 4}", "`dense`", "Weight (in, out): x W + b."),
    _layer(
        "{kind: dense, name: x, units: 4, use_bias: false}",
        "`dense` without bias",
        "Gemm with two inputs.",
    ),
    _layer(
        "{kind: conv2d, name: x, filters: 4, kernel_size: 3}",
        "`conv2d`",
        "Weight (filters, channels / groups, kh, kw), ONNX's layout. Padding is always "
        "explicit (`pads`), never `auto_pad`.",
        image=True,
    ),
    _layer(
        "{kind: conv2d, name: x, filters: 4, kernel_size: 2, padding: same}",
        "`conv2d`, `padding: same`",
        "An odd total padding puts the extra row and column at the bottom and right, as "
        "TensorFlow and ONNX SAME_UPPER do.",
        image=True,
    ),
    _layer(
        "{kind: conv2d, name: x, filters: 4, kernel_size: [3, 2], padding: [1, 0]}",
        "`conv2d`, explicit padding",
        "`[ph, pw]` pads top and bottom by ph, left and right by pw.",
        image=True,
    ),
    _layer(
        "{kind: conv2d, name: x, filters: 4, kernel_size: 3, stride: 2, dilation: 2, "
        "groups: 2, activation: relu}",
        "`conv2d`, stride, dilation, groups and an activation",
        "The activation follows as its own node(s).",
        image=True,
    ),
    _layer(
        "{kind: maxpool2d, name: x, kernel_size: 2}",
        "`maxpool2d`",
        "Stride defaults to the kernel size.",
        image=True,
    ),
    _layer(
        "{kind: maxpool2d, name: x, kernel_size: 3, stride: 1, padding: same}",
        "`maxpool2d`, padded",
        "Padding never wins the maximum.",
        image=True,
    ),
    _layer(
        "{kind: avgpool2d, name: x, kernel_size: 3, stride: 1, padding: 1}",
        "`avgpool2d`",
        "Padding is left out of each mean (`count_include_pad=0`), as in training.",
        image=True,
    ),
    Case(
        "`flatten`",
        "{kind: flatten, name: x}",
        ("{kind: flatten, name: x}", _OUT),
        ("x",),
        "Flatten with axis 1 rather than a Reshape to fixed sizes: the batch stays symbolic.",
        input=_IMAGE,
    ),
    _layer(
        "{kind: dropout, name: x, rate: 0.5}",
        "`dropout`",
        "Inverted dropout scales while training, so inference is the identity: no node.",
    ),
    _layer(
        "{kind: batchnorm, name: x}",
        "`batchnorm` on features",
        "Inference form: the running mean and variance, one output.",
    ),
    _layer(
        "{kind: batchnorm, name: x, epsilon: 0.001}",
        "`batchnorm` on images",
        "Per channel of (batch, channels, height, width).",
        image=True,
    ),
    _layer(
        "{kind: lrn, name: x, size: 3}",
        "`lrn`, odd `size`",
        "ONNX LRN, as AlexNet uses it.",
        image=True,
    ),
    _layer(
        "{kind: lrn, name: x, size: 2}",
        "`lrn`, even `size`",
        "onnxruntime's CPU LRN refuses even sizes although ONNX defines them, so the "
        "definition is written out: the window's sum of squares as a 1×1 Conv whose weight "
        "is the 0/1 band of each channel's window, then x / (bias + alpha / size · sum) ^ beta.",
        image=True,
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
    from ..pipeline import build, export
    from ..spec.models import load_spec

    return export(build(load_spec(_spec_text(case))))


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
        _table(LAYERS, "layer"),
        "## Activations\n",
        "On a dense layer named `x`; a `conv2d` layer's activation is lowered the same way, "
        "after its Conv.\n",
        _table(_activation_cases(), "activation"),
    ]
    return "\n".join(parts)


def main() -> int:
    """Print the page: ``python -m nnspec._docgen.onnx_md > docs/onnx.md``."""
    sys.stdout.write(onnx_reference())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
