"""A small deterministic graph builder over ``onnx.helper``: unique names, typed constants."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class GraphBuilder:
    """Collects nodes and initializers; every value is named after the node that makes it.

    Layer lowerings call ``node`` with ONNX op names (``Gemm``, ``Sigmoid``) and
    ``initializer``/``constant`` with NumPy arrays, so they never import ``onnx`` themselves.
    """

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.nodes: list[onnx.NodeProto] = []
        # Kept as arrays until the model is made: a model over 2 GB stores them in a file.
        self.tensors: list[tuple[str, np.ndarray]] = []
        self._used: set[str] = set()

    def unique(self, name: str) -> str:
        candidate, k = name, 1
        while candidate in self._used:
            candidate, k = f"{name}_{k}", k + 1
        self._used.add(candidate)
        return candidate

    def initializer(self, name: str, array: np.ndarray) -> str:
        """A float tensor in the export dtype (parameters and preprocessing statistics)."""
        name = self.unique(name)
        self.tensors.append((name, np.ascontiguousarray(array, self.dtype)))
        return name

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for _, a in self.tensors)

    def initializers(self) -> list[onnx.TensorProto]:
        return [numpy_helper.from_array(a, name) for name, a in self.tensors]

    constant = initializer

    def typed_constant(self, name: str, array: np.ndarray) -> str:
        """A tensor kept in its own dtype (int64 indices, strings), not the export dtype."""
        name = self.unique(name)
        self.tensors.append((name, np.asarray(array)))
        return name

    def node(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        """Add one node; its single output is named like the node. Returns that name."""
        name = self.unique(name)
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name
