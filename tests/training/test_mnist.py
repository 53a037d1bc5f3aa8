"""The real-MNIST subset (builtin mnist5k) trains the shipped MNIST specs to known accuracies.

Measured here (seed 0, 3,750 training and 1,250 test digits): mnist-lenet 0.964, mnist-dbn
0.910 (see the specs' comments for full MNIST); long runs, so marked slow.
"""

from __future__ import annotations

import pytest
from conftest import ROOT

import nnspec


@pytest.mark.slow
@pytest.mark.parametrize("name,floor", [("mnist-lenet", 0.95), ("mnist-dbn", 0.88)])
def test_mnist_subset_accuracy(name, floor):
    result = nnspec.train(nnspec.load_spec(ROOT / "specs" / f"{name}.yaml"))
    assert len(result.splits.test.x) == 1250
    assert result.metrics["accuracy"] >= floor, result.metrics


def test_mnist_specs_take_ten_classes_from_the_data():
    for name in ("mnist-lenet", "mnist-dbn"):
        spec = nnspec.load_spec(ROOT / "specs" / f"{name}.yaml")
        io, rows = nnspec.resolve(spec)
        assert io.outputs == 10 and rows[-1].params == rows[-2].output_shape[1] * 10 + 10
