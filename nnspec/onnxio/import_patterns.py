"""The patterns ``nnspec import`` recognises: one handler per ONNX op type (ops of another
domain as ``<domain>.<op>``, ``ai.onnx.ml.Scaler``) on the chain from
the graph's input to its output, each turning its node into spec layers (with weights in
nnspec's layout) or folding it into one.

``PATTERNS`` is the registry: op type -> ``Pattern`` (the handler, and the two sentences of
docs/onnx.md's "Importing" table: what the pattern is, and what the spec gets). Refusing a
duplicate keeps one place per op, as the layer registry does. A handler reads its node's
attributes and constant inputs, checks that nnspec can say the same thing exactly, and
raises ``Unsupported`` with the reason when it cannot.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

from ..layers import LAYERS
from ..layers import window as win
from .import_graph import FOLDABLE, ForeignGraph, fold_node

# Elementwise activations that never decrease: they commute with max pooling, so one after a
# pool may move onto the layer before the pool (relu(max(x)) == max(relu(x))).
MONOTONE = frozenset({"relu", "leaky_relu", "logistic", "tanh"})
LEAKY_SLOPE = 0.01  # nnspec's leaky_relu, as torch.nn.LeakyReLU's default


class Unsupported(Exception):
    """This node cannot become nnspec layers; the message says why."""


@dataclass
class ImportedLayer:
    """One layer of the spec being written: its fields and its arrays in nnspec's layout."""

    kind: str
    name: str
    fields: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)  # the source nodes it came from

    def spec(self):
        """The validated layer spec (for its output shape)."""
        return LAYERS[self.kind].spec.model_validate({"kind": self.kind, **self.fields})


@dataclass
class ImportState:
    """What the walk has built so far."""

    graph: ForeignGraph
    shape: tuple  # the current value's shape, nnspec style: (None, *sample)
    graph_input_shape: tuple = ()  # one sample of the graph's input
    layers: list[ImportedLayer] = field(default_factory=list)
    # Input preprocessing x' = a * x + b, per feature or per channel (None: none yet).
    pre_a: np.ndarray | None = None
    pre_b: np.ndarray | None = None
    output: str | None = None  # "softmax" or "log_softmax" when the graph ends in one
    # The gaussian activation exp(-z²/2) as its three nodes: Mul(z, z), Mul(·, -0.5), Exp.
    gaussian_step: int = 0
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # node, op, what it became
    _names: set[str] = field(default_factory=set)

    # -- naming --------------------------------------------------------------------------
    def name_for(self, node: onnx.NodeProto, weight: str | None = None) -> str:
        """A layer name from the graph: ``features.0`` from torch's ``features.0.weight`` or
        ``/features/features.0/Conv``, else the node's name; valid and unique."""
        candidates = []
        if weight:
            for suffix in (".weight", ".W", ".kernel", "_weight", "_W"):
                if weight.endswith(suffix):
                    candidates.append(weight[: -len(suffix)])
        parts = [p for p in (node.name or "").split("/") if p]
        if parts and parts[-1].split("_")[0] == node.op_type and len(parts) > 1:
            parts = parts[:-1]
        if parts:
            candidates.append(parts[-1])
        if weight:
            candidates.append(weight)
        candidates.append(f"{node.op_type.lower()}_{len(self.layers)}")
        for c in candidates:
            c = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in c)
            if c and not (c[0].isalpha() or c[0] == "_"):
                c = "_" + c
            if c:
                break
        name, k = c, 1
        while name in self._names or name.startswith(("preprocess.", "postprocess.")):
            name, k = f"{c}_{k}", k + 1
        self._names.add(name)
        return name

    # -- building ------------------------------------------------------------------------
    def add(self, node, kind: str, fields: dict, arrays=None, weight: str | None = None):
        layer = ImportedLayer(kind, self.name_for(node, weight), fields, arrays or {}, [node.name])
        try:
            self.shape = layer.spec().output_shape(self.shape)
        except Exception as e:  # noqa: BLE001  a ShapeError or a field nnspec refuses
            raise Unsupported(f"as a {kind} layer it does not fit: {e}") from None
        self.layers.append(layer)
        self.rows.append((node.name, node.op_type, f"{kind} {layer.name}"))
        return layer

    def note(self, node, what: str) -> None:
        self.rows.append((node.name, node.op_type, what))

    @property
    def last(self) -> ImportedLayer | None:
        return self.layers[-1] if self.layers else None

    def const(self, node, i: int, what: str) -> np.ndarray:
        v = node.input[i] if i < len(node.input) else ""
        array = self.graph.constant(v) if v else None
        if array is None:
            raise Unsupported(f"its {what} (input {i}, {v!r}) is not a constant; expected weights")
        return array


def _f32(value) -> float:
    """An attribute's float32 as the shortest decimal that reads back the same (0.2, not
    0.20000000298023224): what the spec then says."""
    return float(str(np.float32(value)))


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _floats(a: np.ndarray) -> np.ndarray:
    if not np.issubdtype(a.dtype, np.floating):
        raise Unsupported(f"expected float weights, got {a.dtype}")
    return a.astype(np.float64)


def _per_unit(c: np.ndarray, shape: tuple, what: str) -> np.ndarray:
    """A constant that broadcasts over ``shape`` (None, *sample) as one value per feature (flat)
    or per channel (images): (features,) or (channels,). Anything else is refused."""
    sample = tuple(int(d) for d in shape[1:])
    try:
        full = np.broadcast_to(np.asarray(c, np.float64), (1, *sample))[0]
    except ValueError:
        raise Unsupported(
            f"its {what} of shape {c.shape} does not broadcast over {sample}"
        ) from None
    if len(sample) == 1:
        return full.copy()
    if len(sample) == 3:
        per = full[:, :1, :1]
        if not np.array_equal(np.broadcast_to(per, full.shape), full):
            raise Unsupported(
                f"its {what} of shape {c.shape} varies over height or width; nnspec takes one "
                "value per channel"
            )
        return per[:, 0, 0].copy()
    raise Unsupported(f"expected a flat or image value, got shape {sample}")


# -- affine ops: preprocessing before the first layer, folded into a layer after it ----------


def _affine(st: ImportState, node, x: str) -> None:
    """Sub/Div/Mul/Add with a constant: preprocessing before any layer; folded into the weights
    of a dense or conv2d layer (with no activation yet) after one."""
    a, b = node.input[0], node.input[1]
    op = node.op_type
    if op == "Mul" and a == b == x:
        _gaussian_square(st, node)
        return
    if st.gaussian_step == 1:
        c = st.graph.constant(b if x == a else a)
        if op != "Mul" or c is None or c.size != 1 or float(c.reshape(-1)[0]) != -0.5:
            raise Unsupported("expected Mul(z * z, -0.5) of the gaussian exp(-z²/2)")
        st.gaussian_step = 2
        st.note(node, "gaussian activation (-0.5 z²)")
        return
    if x == a and st.graph.is_constant(b):
        c = st.graph.constant(b)
    elif x == b and st.graph.is_constant(a) and op in ("Mul", "Add"):
        c = st.graph.constant(a)
    else:
        raise Unsupported(
            f"expected the data and one constant ({op}(x, c)), got inputs {list(node.input)}"
        )
    c = _per_unit(_floats(c), st.shape, "constant")
    scale = {"Mul": c, "Div": None, "Add": None, "Sub": None}[op]
    if op == "Div":
        if np.any(c == 0):
            raise Unsupported("it divides by zero")
        scale = 1.0 / c
    shift = {"Add": c, "Sub": -c}.get(op)
    if not st.layers:
        n = len(c)
        a0 = np.ones(n) if st.pre_a is None else st.pre_a
        b0 = np.zeros(n) if st.pre_b is None else st.pre_b
        if scale is not None:
            if np.any(scale == 0):
                raise Unsupported("it multiplies an input by zero")
            a0, b0 = a0 * scale, b0 * scale
        if shift is not None:
            b0 = b0 + shift
        st.pre_a, st.pre_b = a0, b0
        st.note(node, "preprocess (standardize)")
        return
    layer = st.last
    if layer.kind not in ("dense", "conv2d") or layer.fields.get("activation", "identity") != (
        "identity"
    ):
        raise Unsupported(
            f"it follows {layer.kind} {layer.name}"
            + (
                f" (activation {layer.fields.get('activation')})"
                if "activation" in layer.fields
                else ""
            )
            + "; a constant scale or shift folds only into a dense or conv2d layer before its "
            "activation"
        )
    w = layer.arrays["weight"]
    if scale is not None:  # dense weight (in, out): scale the columns; conv (F, C, kh, kw)
        layer.arrays["weight"] = w * (
            scale if layer.kind == "dense" else scale[:, None, None, None]
        )
        if "bias" in layer.arrays:
            layer.arrays["bias"] = layer.arrays["bias"] * scale
    if shift is not None:
        bias = layer.arrays.get("bias", np.zeros(len(shift)))
        layer.arrays["bias"] = bias + shift
        layer.fields.pop("use_bias", None)
    layer.nodes.append(node.name)
    st.note(node, f"folded into {layer.name} ({'scale' if scale is not None else 'bias'})")


def _gaussian_square(st: ImportState, node) -> None:
    layer = st.last
    if (
        layer is None
        or layer.kind not in ("dense", "conv2d")
        or layer.fields.get("activation", "identity") != "identity"
    ):
        raise Unsupported("Mul(z, z) is taken only as the start of a dense/conv2d's gaussian")
    st.gaussian_step = 1
    st.note(node, "gaussian activation (z²)")


def _exp(st: ImportState, node, x: str) -> None:
    if st.gaussian_step != 2:
        raise Unsupported("Exp is taken only as the end of the gaussian exp(-0.5 z²)")
    st.gaussian_step = 0
    st.last.fields["activation"] = "gaussian"
    st.last.nodes.append(node.name)
    st.note(node, f"activation of {st.last.name} (gaussian)")


def _scaler(st: ImportState, node, x: str) -> None:
    """skl2onnx's StandardScaler (ai.onnx.ml Scaler): y = (x - offset) * scale, before the
    first layer: preprocessing."""
    if st.layers or st.pre_a is not None:
        raise Unsupported("expected it at the input, before any layer or other scaling")
    at = attrs(node)
    n = st.shape[1] if len(st.shape) == 2 else None
    if n is None:
        raise Unsupported("expected a flat input (batch, features)")
    offset = np.broadcast_to(np.asarray(at.get("offset", [0.0]), np.float64), (n,))
    scale = np.broadcast_to(np.asarray(at.get("scale", [1.0]), np.float64), (n,))
    if np.any(scale == 0):
        raise Unsupported("its scale has zeros")
    st.pre_a, st.pre_b = scale.copy(), -offset * scale
    st.note(node, "preprocess (standardize)")


# -- layers ---------------------------------------------------------------------------------


def _gemm(st: ImportState, node, x: str) -> None:
    at = attrs(node)
    if node.input[0] != x or at.get("transA", 0):
        raise Unsupported("expected the data as A, not transposed (transA=0)")
    b = _floats(st.const(node, 1, "B (the weight)"))
    w = b.T if at.get("transB", 0) else b  # nnspec's dense weight is (in, out)
    w = w * at.get("alpha", 1.0)
    fields = {"units": int(w.shape[1])}
    arrays = {"weight": w}
    if len(node.input) > 2 and node.input[2]:
        c = _floats(st.const(node, 2, "C (the bias)")) * at.get("beta", 1.0)
        arrays["bias"] = _per_unit(c, (None, w.shape[1]), "bias C")
    else:
        fields["use_bias"] = False
    _check_in(st, w.shape[0])
    st.add(node, "dense", fields, arrays, node.input[1])


def _check_in(st: ImportState, features: int) -> None:
    if len(st.shape) != 2 or st.shape[1] != features:
        raise Unsupported(
            f"its weight expects {features} input features, the data here is "
            f"{'×'.join(str(d) for d in st.shape[1:])}"
        )


def _matmul(st: ImportState, node, x: str) -> None:
    if node.input[0] != x:
        raise Unsupported("expected the data as the first input (x W)")
    w = _floats(st.const(node, 1, "W (the weight)"))
    if w.ndim != 2:
        raise Unsupported(f"expected a 2-D weight, got shape {w.shape}")
    _check_in(st, w.shape[0])
    st.add(node, "dense", {"units": int(w.shape[1]), "use_bias": False}, {"weight": w},
           node.input[1])  # fmt: skip


def _add(st: ImportState, node, x: str) -> None:
    """Add of a constant: a MatMul's bias, or an affine op."""
    _affine(st, node, x)


def _window(at: dict, hw: tuple[int, int], kernel, what: str, dilation=(1, 1)):
    """(stride, padding) as nnspec writes them, from ONNX's strides/pads/auto_pad."""
    stride = tuple(at.get("strides", [1, 1]))
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    shape = (None, 1, *hw)
    same = win.fit_window(shape, list(kernel), list(stride), "same", list(dilation)).pads
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = same if auto == "SAME_UPPER" else (same[2], same[3], same[0], same[1])
    elif auto == "VALID":
        pads = (0, 0, 0, 0)
    else:
        pads = tuple(at.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4 or len(stride) != 2:
        raise Unsupported(f"expected a 2-D {what}, got pads {list(pads)}")
    if pads == (0, 0, 0, 0):
        padding = "valid"
    elif pads[0] == pads[2] and pads[1] == pads[3]:
        padding = pads[0] if pads[0] == pads[1] else [pads[0], pads[1]]
    elif pads == tuple(same):
        padding = "same"
    else:
        raise Unsupported(
            f"its pads {list(pads)} (top, left, bottom, right) are uneven and not what "
            "padding: same gives; nnspec pads both sides alike"
        )
    ceil = at.get("ceil_mode", 0)
    if ceil:
        geo = win.fit_window(shape, list(kernel), list(stride), padding, list(dilation))
        span = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
        padded = [hw[0] + pads[0] + pads[2], hw[1] + pads[1] + pads[3]]
        ceiled = [
            math.ceil((p - s) / st) + 1 for p, s, st in zip(padded, span, stride, strict=True)
        ]
        if list(geo.out) != ceiled:
            raise Unsupported("ceil_mode=1 adds a partial window here; nnspec pools with floor")
    return (stride[0] if stride[0] == stride[1] else list(stride)), padding


def _pair(v) -> int | list[int]:
    v = [int(a) for a in v]
    return v[0] if v[0] == v[1] else v


def _conv(st: ImportState, node, x: str) -> None:
    at = attrs(node)
    w = _floats(st.const(node, 1, "W (the kernels)"))
    if w.ndim != 4 or len(st.shape) != 4:
        raise Unsupported(f"expected a 2-D convolution of images, got a weight of shape {w.shape}")
    groups = int(at.get("group", 1))
    if w.shape[1] * groups != st.shape[1]:
        raise Unsupported(
            f"its weight {w.shape} with group={groups} expects {w.shape[1] * groups} input "
            f"channels, the data has {st.shape[1]}"
        )
    dilation = tuple(at.get("dilations", [1, 1]))
    kernel = w.shape[2:]
    stride, padding = _window(at, st.shape[2:], kernel, "convolution", dilation)
    fields = {"filters": int(w.shape[0]), "kernel_size": _pair(kernel)}
    if stride != 1:
        fields["stride"] = stride
    if padding != "valid":
        fields["padding"] = padding
    if dilation != (1, 1):
        fields["dilation"] = _pair(dilation)
    if groups != 1:
        fields["groups"] = groups
    arrays = {"weight": w}
    if len(node.input) > 2 and node.input[2]:
        arrays["bias"] = _floats(st.const(node, 2, "B (the bias)")).reshape(-1)
    else:
        fields["use_bias"] = False
    st.add(node, "conv2d", fields, arrays, node.input[1])


def _pool(kind: str) -> Callable:
    def handle(st: ImportState, node, x: str) -> None:
        at = attrs(node)
        if len(st.shape) != 4:
            raise Unsupported("expected images (batch, channels, height, width)")
        if any(d != 1 for d in at.get("dilations", [1, 1])):
            raise Unsupported(f"dilations {at['dilations']}: nnspec pools without dilation")
        if len(node.output) > 1 and node.output[1] and st.graph.consumers.get(node.output[1]):
            raise Unsupported("its second output (the indices) is used")
        kernel = tuple(at["kernel_shape"])
        stride, padding = _window(at, st.shape[2:], kernel, "pooling")
        if kernel == (1, 1) and stride == 1 and padding == "valid":
            # torch's AdaptiveAvgPool2d((6, 6)) on AlexNet's 6×6 maps: the identity.
            st.note(node, "identity (a 1×1 window, stride 1)")
            return
        if kind == "avgpool2d" and padding != "valid" and at.get("count_include_pad", 0):
            raise Unsupported(
                "count_include_pad=1 with padding: nnspec leaves padding out of the mean"
            )
        fields = {"kernel_size": _pair(kernel)}
        if stride != fields["kernel_size"]:
            fields["stride"] = stride
        if padding != "valid":
            fields["padding"] = padding
        st.add(node, kind, fields)

    return handle


def _axes(st: ImportState, node) -> list[int] | None:
    """The node's axes (an attribute before opset 18, an input after), sorted, non-negative."""
    axes = attrs(node).get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = st.const(node, 1, "axes").tolist()
    return None if axes is None else sorted(a % len(st.shape) for a in axes)


def _global_avg(st: ImportState, node, x: str) -> None:
    if len(st.shape) != 4:
        raise Unsupported("expected images (batch, channels, height, width)")
    st.add(node, "globalavgpool2d", {})


def _reduce_mean(st: ImportState, node, x: str) -> None:
    """ReduceMean over height and width: global average pooling (dynamo's AdaptiveAvgPool2d(1))."""
    at = attrs(node)
    axes = _axes(st, node)
    if len(st.shape) != 4 or axes != [2, 3]:
        raise Unsupported(f"expected a mean over height and width (axes [2, 3]), got axes {axes}")
    st.add(node, "globalavgpool2d", {})
    if not at.get("keepdims", 1):
        layer = ImportedLayer("flatten", st.name_for(node) + "_flat", {}, {}, [node.name])
        st.shape = layer.spec().output_shape(st.shape)
        st.layers.append(layer)


def _lrn(st: ImportState, node, x: str) -> None:
    at = attrs(node)
    fields = {"size": int(at["size"]), "alpha": _f32(at.get("alpha", 1e-4)),
              "beta": _f32(at.get("beta", 0.75)),
              "bias": _f32(at.get("bias", 1.0))}  # fmt: skip
    st.add(node, "lrn", fields)


def _batchnorm(st: ImportState, node, x: str) -> None:
    at = attrs(node)
    if any(o and st.graph.consumers.get(o) for o in node.output[1:]):
        raise Unsupported("it is in training mode (its running statistics are outputs)")
    if at.get("training_mode", 0):
        raise Unsupported("training_mode=1; expected an inference graph")
    names = ("scale", "bias", "running_mean", "running_var")
    arrays = {k: _floats(st.const(node, i + 1, k)).reshape(-1) for i, k in enumerate(names)}
    fields = {"epsilon": _f32(at.get("epsilon", 1e-5))}
    momentum = _f32(at.get("momentum", 0.9))
    if momentum != 0.9:
        fields["momentum"] = momentum
    st.add(node, "batchnorm", fields, arrays, node.input[1])


def _fold_batchnorm(st: ImportState) -> str | None:
    """A batchnorm right after a dense/conv2d with no activation, folded into its weights so
    that an activation after the batchnorm can sit on that layer (nnspec's batchnorm has
    none): y = s (W x + b - m) / sqrt(v + eps) + beta."""
    bn = st.last
    if bn is None or bn.kind != "batchnorm" or len(st.layers) < 2:
        return None
    prev = st.layers[-2]
    if prev.kind not in ("dense", "conv2d") or prev.fields.get("activation", "identity") != (
        "identity"
    ):
        return None
    a = bn.arrays
    k = a["scale"] / np.sqrt(a["running_var"] + bn.fields["epsilon"])
    w = prev.arrays["weight"]
    prev.arrays["weight"] = w * (k if prev.kind == "dense" else k[:, None, None, None])
    bias = prev.arrays.get("bias", np.zeros(len(k)))
    prev.arrays["bias"] = (bias - a["running_mean"]) * k + a["bias"]
    prev.fields.pop("use_bias", None)
    prev.nodes += bn.nodes
    st.layers.pop()
    st._names.discard(bn.name)
    st.rows = [
        (n, op, f"folded into {prev.name} (batchnorm)" if what == f"batchnorm {bn.name}" else what)
        for n, op, what in st.rows
    ]
    return prev.name


def _activation(name: str) -> Callable:
    def handle(st: ImportState, node, x: str) -> None:
        if name == "leaky_relu":
            alpha = _f32(attrs(node).get("alpha", 0.01))
            if alpha != _f32(LEAKY_SLOPE):
                raise Unsupported(f"alpha {alpha}: nnspec's leaky_relu has slope {LEAKY_SLOPE}")
        _fold_batchnorm(st)
        passed = []
        for layer in reversed(st.layers):
            if layer.kind in ("dense", "conv2d"):
                if layer.fields.get("activation", "identity") != "identity":
                    raise Unsupported(
                        f"{layer.name} already has the activation {layer.fields['activation']}"
                    )
                layer.fields["activation"] = name
                layer.nodes.append(node.name)
                via = (
                    f" (moved before {', '.join(passed)}, which it commutes with)" if passed else ""
                )
                st.note(node, f"activation of {layer.name}{via}")
                return
            if layer.kind in ("flatten", "dropout") or (
                layer.kind == "maxpool2d" and name in MONOTONE
            ):
                passed.append(layer.name)
                continue
            break
        where = f"after {st.last.kind} {st.last.name}" if st.layers else "before any layer"
        raise Unsupported(
            f"it comes {where}; nnspec applies activations inside dense and conv2d layers"
        )

    return handle


def _softmax(log: bool) -> Callable:
    def handle(st: ImportState, node, x: str) -> None:
        axis = attrs(node).get("axis", -1)
        if len(st.shape) != 2 or axis not in (1, -1):
            raise Unsupported(
                f"expected a softmax over the classes of (batch, classes), axis {axis}"
            )
        last = st.last
        if (
            last is None
            or last.kind != "dense"
            or last.fields.get("activation", "identity") != ("identity")
        ):
            raise Unsupported("expected it right after a dense layer with no activation")
        last.fields["activation"] = "softmax"
        last.nodes.append(node.name)
        st.output = "log_softmax" if log else "softmax"
        st.note(
            node, f"output activation of {last.name}" + (" (probabilities = exp)" if log else "")
        )

    return handle


def _flatten_like(st: ImportState, node) -> None:
    if len(st.shape) == 2:
        st.note(node, "identity (already flat)")
        return
    st.add(node, "flatten", {})


def _flatten(st: ImportState, node, x: str) -> None:
    axis = attrs(node).get("axis", 1)
    if axis not in (1, 1 - len(st.shape)):
        raise Unsupported(f"axis {axis}: nnspec flattens everything after the batch (axis 1)")
    _flatten_like(st, node)


def _reshape(st: ImportState, node, x: str) -> None:
    """Reshape to (batch, everything else): a flatten, whether the target shape is constant
    ([-1, 9216], [0, -1], [N, -1] with the graph's own batch N) or computed from Shape(x)."""
    sample = math.prod(int(d) for d in st.shape[1:])
    batch = st.graph.shapes.get(st.graph.inputs[0].name, (None,))[0]
    target = st.graph.constant(node.input[1])
    zero_copies = not attrs(node).get("allowzero", 0)  # 0 means "this axis as it is"

    def flattens(t, n) -> bool:  # t: the target shape, when the batch is n
        return (
            t is not None
            and len(t) == 2
            and (t[0] in (-1, n) or (t[0] == 0 and zero_copies))
            and (t[1] == sample or (t[1] == -1 and t[0] != -1))
        )

    if target is not None:
        t = [int(d) for d in target.reshape(-1)]
        ok = flattens(t, batch)
    else:
        # Computed from Shape(x) (x.view(x.size(0), -1)): evaluated for two batch sizes, it
        # must give (batch, the rest) for both.
        t = _computed_shape(st, node.input[1], x, 2)
        ok = flattens(t, 2) and flattens(_computed_shape(st, node.input[1], x, 3), 3)
    if not ok:
        raise Unsupported(
            f"it reshapes samples of {'×'.join(str(d) for d in st.shape[1:])} values to {t}, "
            "which mixes samples or keeps them apart; nnspec takes a Reshape only to (batch, "
            "all the rest), as a flatten"
        )
    _flatten_like(st, node)


def _computed_shape(st: ImportState, name: str, x: str, batch: int) -> list[int] | None:
    """The value of ``name`` (a Reshape's shape input) when ``x`` has ``batch`` samples: the
    nodes computing it from Shape(x) and constants, folded; None when it needs anything else."""
    g = st.graph
    known = dict(g.constants)

    def value(v: str):
        if v in known:
            return known[v]
        node = g.producer.get(v)
        if node is None:
            return None
        if node.op_type == "Shape":
            sample = st.shape[1:] if node.input[0] == x else g.shapes.get(node.input[0], ())[1:]
            if not sample or not all(isinstance(d, int) for d in sample):
                return None
            at = attrs(node)
            dims = np.array([batch, *sample], np.int64)
            known[v] = dims[at.get("start", 0) : at.get("end", len(dims))]
            return known[v]
        if node.op_type not in FOLDABLE:
            return None
        if any(i and value(i) is None for i in node.input):
            return None
        try:
            known.update(fold_node(node, known, g.opset))
        except Exception:  # noqa: BLE001  then it is not a shape nnspec can follow
            return None
        return known.get(v)

    result = value(name)
    return None if result is None else [int(d) for d in np.asarray(result).reshape(-1)]


def _squeeze(st: ImportState, node, x: str) -> None:
    axes = _axes(st, node)
    if len(st.shape) == 4 and st.shape[2:] == (1, 1) and axes == [2, 3]:
        st.add(node, "flatten", {})
        return
    raise Unsupported(
        f"expected a squeeze of the 1×1 spatial axes of (batch, C, 1, 1), axes {axes}"
    )


def _dropout(st: ImportState, node, x: str) -> None:
    at = attrs(node)
    rate = at.get("ratio", 0.5)
    if len(node.input) > 1 and node.input[1]:
        rate = float(st.const(node, 1, "ratio"))
    if len(node.output) > 1 and node.output[1] and st.graph.consumers.get(node.output[1]):
        raise Unsupported("its mask output is used")
    st.add(node, "dropout", {"rate": _f32(rate)})


def _identity(st: ImportState, node, x: str) -> None:
    st.note(node, "identity")


def _cast(st: ImportState, node, x: str) -> None:
    to = attrs(node).get("to")
    if to not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
        raise Unsupported(f"it casts to {helper.tensor_dtype_to_string(to)}; expected float")
    st.note(node, "identity (cast to float: nnspec computes in float32)")


@dataclass(frozen=True)
class Pattern:
    handler: Callable[[ImportState, onnx.NodeProto, str], None]
    pattern: str  # docs: the ONNX side
    becomes: str  # docs: the spec side


class PatternRegistry(dict):
    def register(self, ops: tuple[str, ...], pattern: Pattern) -> None:
        for op in ops:
            if op in self:
                raise ValueError(f"import pattern for {op} registered twice")
            self[op] = pattern


PATTERNS = PatternRegistry()
# The layer kinds each op's pattern writes into the spec.
MAKES = {
    "Gemm": ("dense",), "MatMul": ("dense",), "Conv": ("conv2d",), "MaxPool": ("maxpool2d",),
    "AveragePool": ("avgpool2d",), "GlobalAveragePool": ("globalavgpool2d",),
    "ReduceMean": ("globalavgpool2d", "flatten"), "LRN": ("lrn",),
    "BatchNormalization": ("batchnorm",), "Flatten": ("flatten",), "Reshape": ("flatten",),
    "Squeeze": ("flatten",), "Dropout": ("dropout",),
}  # fmt: skip
for _ops, _p in (
    (
        ("Gemm",),
        Pattern(
            _gemm,
            "`Gemm` with constant B (any `transB`, `alpha`, `beta`) and C",
            "`dense` (weight `alpha·B` or `alpha·Bᵀ` as (in, out), bias `beta·C`)",
        ),
    ),
    (
        ("MatMul",),
        Pattern(
            _matmul,
            "`MatMul` by a constant 2-D W, then `Add` of a constant",
            "`dense` (the Add becomes its bias)",
        ),
    ),
    (
        ("Add", "Sub", "Mul", "Div"),
        Pattern(
            _affine,
            "`Sub`/`Div`/`Mul`/`Add` of a per-feature or per-channel constant",
            "before the first layer: `preprocess: {standardize: true}` with the mean and scale; "
            "after a dense or conv2d with no activation yet: folded into its weight and bias",
        ),
    ),
    (
        ("Conv",),
        Pattern(
            _conv,
            "`Conv` 2-D (strides, pads or auto_pad, dilations, group)",
            "`conv2d` (`padding` n, [h, w] or `same`; uneven pads otherwise refused)",
        ),
    ),
    (
        ("Relu",),
        Pattern(
            _activation("relu"),
            "`Relu`",
            "`activation: relu` of the dense or conv2d before it (also across max pooling, "
            "flatten and dropout, which it commutes with; so are the other activations)",
        ),
    ),
    (("Sigmoid",), Pattern(_activation("logistic"), "`Sigmoid`", "`activation: logistic`")),
    (("Tanh",), Pattern(_activation("tanh"), "`Tanh`", "`activation: tanh`")),
    (
        ("LeakyRelu",),
        Pattern(_activation("leaky_relu"), "`LeakyRelu` (alpha 0.01)", "`activation: leaky_relu`"),
    ),
    (
        ("Softmax",),
        Pattern(
            _softmax(False),
            "`Softmax` over the classes, at the output",
            "`activation: softmax`, `task: classification`, `loss: cross_entropy`",
        ),
    ),
    (
        ("LogSoftmax",),
        Pattern(
            _softmax(True),
            "`LogSoftmax` at the output",
            "`activation: softmax` (checked as exp of the source's output)",
        ),
    ),
    (
        ("MaxPool",),
        Pattern(
            _pool("maxpool2d"),
            "`MaxPool` 2-D (no dilation; ceil_mode only where it adds no window)",
            "`maxpool2d`",
        ),
    ),
    (
        ("AveragePool",),
        Pattern(
            _pool("avgpool2d"),
            "`AveragePool` 2-D (padding not counted)",
            "`avgpool2d` (nothing for a 1×1 window with stride 1)",
        ),
    ),
    (("GlobalAveragePool",), Pattern(_global_avg, "`GlobalAveragePool`", "`globalavgpool2d`")),
    (
        ("ReduceMean",),
        Pattern(
            _reduce_mean,
            "`ReduceMean` over axes [2, 3] (torch dynamo's AdaptiveAvgPool2d(1))",
            "`globalavgpool2d` (+ `flatten` without keepdims)",
        ),
    ),
    (("LRN",), Pattern(_lrn, "`LRN`", "`lrn` (size, alpha, beta, bias)")),
    (
        ("BatchNormalization",),
        Pattern(
            _batchnorm,
            "`BatchNormalization` (inference)",
            "`batchnorm` with the running statistics; folded into the dense/conv2d before it when "
            "an activation follows",
        ),
    ),
    (("Flatten",), Pattern(_flatten, "`Flatten` (axis 1)", "`flatten`")),
    (
        ("Reshape",),
        Pattern(
            _reshape,
            "`Reshape` to (batch, rest): [-1, n], [0, -1], [N, -1] or computed from `Shape`",
            "`flatten` (nothing when already flat)",
        ),
    ),
    (("Squeeze",), Pattern(_squeeze, "`Squeeze` of the 1×1 axes [2, 3]", "`flatten`")),
    (("Dropout",), Pattern(_dropout, "`Dropout`", "`dropout` (rate from `ratio`)")),
    (
        ("Exp",),
        Pattern(_exp, "`Mul(z, z)`, `Mul(·, -0.5)`, `Exp`", "`activation: gaussian`"),
    ),
    (
        ("ai.onnx.ml.Scaler",),
        Pattern(
            _scaler,
            "`Scaler` (ai.onnx.ml, skl2onnx's StandardScaler) at the input",
            "`preprocess: {standardize: true}` (mean = offset, scale = 1 / scale)",
        ),
    ),
    (("Identity",), Pattern(_identity, "`Identity`", "nothing")),
    (("Cast",), Pattern(_cast, "`Cast` to float", "nothing")),
):
    # A pattern that makes a layer kind this build lacks (a package without lrn.py) is left
    # out, so that such nodes are refused as unsupported and the docs do not list them.
    if all(k in LAYERS for op in _ops for k in MAKES.get(op, ())):
        PATTERNS.register(_ops, _p)
