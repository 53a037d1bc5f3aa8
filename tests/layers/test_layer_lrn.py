"""lrn: gradients for every window size, the forward pass against ONNX's definition written as
loops, ONNX parity of both lowerings (the LRN op, the written-out definition), errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT
from layer_checks import assert_parity, check_gradients, make, normal
from pydantic import ValidationError
from spec_cases import Case, assert_located, conv, write_case

from nnspec.cli.commands import main
from nnspec.layers import ShapeError
from nnspec.layers.lrn import LRN, LRNSpec


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_lrn_gradient(size):
    spec = LRNSpec(kind="lrn", size=size, alpha=0.7, beta=0.75, bias=1.5)
    layer = make(LRN, spec, (None, 5, 2, 3))
    check_gradients(layer, normal(3, 5, 2, 3))


def lrn_reference(x, size, alpha, beta, bias):
    """ONNX's LRN definition, one element at a time."""
    n_, c_, h_, w_ = x.shape
    y = np.empty_like(x)
    for n in range(n_):
        for c in range(c_):
            lo = max(0, c - (size - 1) // 2)
            hi = min(c_ - 1, c + int(np.ceil((size - 1) / 2)))
            for h in range(h_):
                for w in range(w_):
                    s = sum(x[n, i, h, w] ** 2 for i in range(lo, hi + 1))
                    y[n, c, h, w] = x[n, c, h, w] / (bias + alpha / size * s) ** beta
    return y


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 9])
def test_lrn_matches_loop_reference(size):
    x = normal(2, 6, 3, 2, scale=3.0)
    spec = LRNSpec(kind="lrn", size=size, alpha=0.3, beta=0.75, bias=2.0)
    got = make(LRN, spec, (None, 6, 3, 2)).forward(x)
    np.testing.assert_allclose(got, lrn_reference(x, size, 0.3, 0.75, 2.0), rtol=1e-12)


@pytest.mark.parametrize("opset", [13, 18, 22])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_lrn_parity(opset, size):
    spec = LRNSpec(kind="lrn", size=size, alpha=0.5, beta=0.75, bias=2.0)
    nodes = assert_parity(spec, (None, 5, 3, 2), opset).graph.node
    if size % 2:
        [node] = nodes
        assert node.op_type == "LRN" and node.name == "under_test/LRN"
    else:  # onnxruntime's LRN takes odd sizes only: the definition, spelled out
        assert [n.op_type for n in nodes] == ["Mul", "Conv", "Mul", "Add", "Pow", "Div"]


def test_lrn_parity_with_defaults():
    assert_parity(LRNSpec(kind="lrn", size=5), (None, 7, 4, 4), 18)


def test_lrn_shape_error():
    with pytest.raises(ShapeError, match=r"expected \(batch, channels, height, width\)"):
        LRNSpec(kind="lrn", size=3).output_shape((None, 10))
    assert LRNSpec(kind="lrn", size=3).output_shape((None, 4, 5, 6)) == (None, 4, 5, 6)


@pytest.mark.parametrize("fields", [{"kind": "lrn", "size": 0}, {"kind": "lrn"}])
def test_lrn_validation_errors(fields):
    with pytest.raises(ValidationError):
        LRNSpec(**fields)


def test_onnx_md_shows_both_lrn_lowerings():
    """The ONNX op for odd sizes, the written-out definition for even ones."""
    text = (ROOT / "docs" / "onnx.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `lrn`")]
    assert len(rows) == 2
    assert "`LRN` (" in rows[0] and "`Pow`" in rows[1]


def test_lrn_size_zero_is_located(tmp_path, capsys):
    """`nnspec validate` points at the value, as for every malformed spec."""
    case = Case(
        conv({7: "  - {kind: lrn, size: 0}"}),
        7,
        23,
        "layers[1].size",
        "expected a positive integer, got 0",
    )
    path = write_case(tmp_path, case)
    assert main(["validate", str(path)]) == 2
    assert_located(capsys.readouterr().err, path, case)
