"""Networks too big for the machine are refused at validation, with an estimate."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import nnspec
from nnspec import cli, pipeline
from nnspec.errors import SpecError
from nnspec.spec import memory
from nnspec.training.loop import fit

HUGE = """\
spec_version: 1
name: huge
task: classification
data: {builtin: digits}
layers:
  - {kind: dense, units: 1000000000, activation: relu}
  - {kind: dense, units: 10, activation: softmax}
loss: cross_entropy
"""


def test_a_billion_units_is_refused_before_any_allocation(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text(HUGE)
    tracemalloc.start()
    code = cli.main(["validate", str(path)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"{path}:6:26: layers[0].units: this network needs about 1.6 TB")
    assert "75,000,000,010 parameters" in err and "expected a smaller layer" in err
    assert peak < 50 * 2**20  # nothing near the 300 GB of the first weight matrix
    assert cli.main(["train", str(path), "-o", str(tmp_path / "m.onnx")]) == 2
    assert not (tmp_path / "m.onnx").exists()


def test_without_data_the_estimate_is_for_building_and_exporting(tmp_path):
    spec = nnspec.load_spec(
        HUGE.replace("data: {builtin: digits}", "input: {features: 64}\nclasses: [a, b]").replace(
            "units: 10,", "units: 2,"
        )
    )
    with pytest.raises(SpecError, match="needs about .* of memory to build and export"):
        nnspec.resolve(spec)


def test_convolutions_are_located_at_their_filters():
    spec = nnspec.load_spec(
        "spec_version: 1\nname: c\ntask: classification\ndata: {builtin: digits28}\n"
        "layers:\n  - {kind: conv2d, filters: 1024, kernel_size: 3}\n  - {kind: flatten}\n"
        "  - {kind: dense, units: 10, activation: softmax}\nloss: cross_entropy\n"
        "train: {batch_size: 512}\n"
    )
    io, rows = pipeline.resolve(spec)
    with pytest.raises(SpecError, match=r"<spec>:6:29: layers\[0\].filters: .*batch_size"):
        memory.check_memory(spec, io, rows, limit=2**30)


def test_the_estimate_is_close_to_what_training_takes():
    """Within a factor of two of the traced peak of building and training one epoch."""
    spec = nnspec.load_spec(
        "spec_version: 1\nname: m\ntask: classification\ndata: {builtin: digits28}\n"
        "layers:\n  - {kind: dense, units: 1500, activation: relu}\n"
        "  - {kind: dense, units: 10, activation: softmax}\nloss: cross_entropy\n"
        "train: {epochs: 1, batch_size: 256}\n"
    )
    io, rows = pipeline.resolve(spec)
    want = memory.estimate(spec, io, rows).total
    dataset = pipeline.load_data(spec)  # the data are not part of the estimate
    splits = pipeline.split_data(spec, dataset)
    tracemalloc.start()
    network = nnspec.nn.network.build(spec, io)
    network.fit_preprocess(splits.train.x)
    fit(network, splits.train, None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    data = network.scale_x(splits.train.x).nbytes  # the scaled training copy fit makes
    assert 0.5 < want / (peak - data) < 2.0, (want, peak, data)
    assert np.isfinite(network.parameters()["dense_0.weight"]).all()
