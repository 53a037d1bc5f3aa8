"""onnx.reference, with the operators that it gets wrong in the installed onnx replaced.

Each replacement is written from the ONNX operator specification, independently of nnspec's
NumPy layers, and is used only while a probe shows the installed onnx still has the bug, so
the stock implementation comes back once onnx is fixed.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun


class LRN(OpRun):
    """ONNX LRN: square_sum[n, c] sums x[n, i]^2 over channels
    i in [c - floor((size-1)/2), c + ceil((size-1)/2)]. (onnx 1.23's loop runs over the batch
    axis instead of the channels: onnx/onnx#7805, fixed upstream by #8331.)"""

    op_domain = ""

    def _run(self, x, alpha=None, beta=None, bias=None, size=None):
        square_sum = np.zeros_like(x)
        channels = x.shape[1]
        for c in range(channels):
            lo = max(0, c - math.floor((size - 1) / 2))
            hi = min(channels - 1, c + math.ceil((size - 1) / 2))
            square_sum[:, c] = np.sum(x[:, lo : hi + 1] ** 2, axis=1)
        return ((x / (bias + (alpha / size) * square_sum) ** beta).astype(x.dtype),)


def _stock_lrn_is_right() -> bool:
    node = helper.make_node("LRN", ["x"], ["y"], size=3, alpha=3.0, beta=1.0, bias=1.0)
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    got = ReferenceEvaluator(model).run(None, {"x": np.ones((1, 2, 1, 1), np.float32)})[0]
    return bool(np.allclose(got, 1 / 3))  # each channel: 1 / (1 + 3/3 * (1 + 1))


FIXES = [] if _stock_lrn_is_right() else [LRN]


def reference_evaluator(model: onnx.ModelProto) -> ReferenceEvaluator:
    return ReferenceEvaluator(model, new_ops=FIXES)
