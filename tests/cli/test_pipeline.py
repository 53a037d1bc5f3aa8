"""The pipeline is the one flow: the Python API and the command line write the same models.

``nnspec.train`` + ``nnspec.export`` must give the file ``nnspec train`` gives (metadata, test
metrics, parity numbers), a bare network's export is parity checked on seeded random inputs,
and a failed parity check is an error that writes nothing.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import onnx
import pytest
from conftest import ROOT

import nnspec
from nnspec import cli, pipeline
from nnspec.errors import ParityError, SpecError
from nnspec.training import checkpoint as ckpt
from nnspec.training.interrupt import StopRequest, TrainingInterrupted
from nnspec_runtime import Model

IRIS = ROOT / "specs" / "iris.yaml"


def _metadata(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(path).metadata_props}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """iris trained twice: by ``nnspec train`` (in process) and by the Python API."""
    tmp = tmp_path_factory.mktemp("both")
    argv = ["train", str(IRIS), "-o", str(tmp / "cli.onnx"), "--metrics", str(tmp / "cli.json")]
    assert cli.main([*argv, "-q"]) == 0
    result = nnspec.train(nnspec.load_spec(IRIS))
    model = nnspec.export(result, tmp / "api.onnx")
    return tmp, result, model


def test_python_api_writes_the_metadata_the_cli_writes(both):
    tmp, result, _ = both
    cli_meta, api_meta = _metadata(tmp / "cli.onnx"), _metadata(tmp / "api.onnx")
    # Seeded training and the same export: every entry is the same, numbers included.
    assert api_meta == cli_meta
    metrics = json.loads(api_meta["nnspec_test_metrics"])
    assert metrics == result.metrics and metrics["accuracy"] >= 0.95 and metrics["loss"] > 0
    assert json.loads(api_meta["nnspec_epochs_run"]) == result.history.epochs_run == 88
    parity = json.loads(api_meta["nnspec_parity"])
    # The held-out data: the 30 samples of iris's test split (test_fraction 0.2 of 150).
    assert parity["inputs"] == "test" and parity["samples"] == len(result.splits.test.x) == 30
    assert parity["provider"] == "CPUExecutionProvider"
    assert 0 < parity["max_abs_err"] <= 1e-5 and parity["worst_ratio"] <= 1
    # The weights are the same bits too.
    cli_w = {t.name: t.raw_data for t in onnx.load(tmp / "cli.onnx").graph.initializer}
    api_w = {t.name: t.raw_data for t in onnx.load(tmp / "api.onnx").graph.initializer}
    assert cli_w == api_w


def test_metrics_file_is_the_metrics_record_of_the_python_api(both):
    tmp, result, model = both
    written = json.loads((tmp / "cli.json").read_text())
    record = pipeline.metrics_record(result, model)
    # Everything but the wall clock (of the run and of each epoch) is the same.
    for r in (written, record):
        assert r.pop("seconds") > 0
        assert all(row.pop("seconds") > 0 for row in r["history"])
    assert written == record
    assert record["parity"] == json.loads(_metadata(tmp / "api.onnx")["nnspec_parity"])
    assert record["test"]["accuracy"] == result.metrics["accuracy"]


def test_the_held_out_parity_numbers_are_those_of_the_test_split(both):
    tmp, result, _ = both
    parity = json.loads(_metadata(tmp / "api.onnx")["nnspec_parity"])
    x = result.splits.test.x
    got = Model(tmp / "api.onnx", device="cpu").run(x)["probabilities"].astype(np.float64)
    want = result.network.predict(x.astype(np.float32))["probabilities"].astype(np.float64)
    assert parity["max_abs_err"] == np.abs(got - want).max()


def test_a_bare_network_is_checked_on_seeded_random_inputs(tmp_path):
    network = nnspec.build_network(nnspec.load_spec(IRIS))
    nnspec.export(network, tmp_path / "bare.onnx")
    meta = _metadata(tmp_path / "bare.onnx")
    parity = json.loads(meta["nnspec_parity"])
    assert parity["inputs"] == "random" and parity["seed"] == 0 and parity["samples"] == 8
    assert parity["worst_ratio"] <= 1
    assert "nnspec_test_metrics" not in meta and "nnspec_epochs_run" not in meta
    # The recorded numbers are those of N(0, 1) inputs from seed 0 (the standardization of
    # a bare network is the identity), recomputed here.
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    got = Model(tmp_path / "bare.onnx", device="cpu").run(x)["probabilities"]
    want = network.predict(x)["probabilities"]
    assert parity["max_abs_err"] == np.abs(got.astype(np.float64) - want).max() > 0
    # In memory too: the same check, the same record.
    assert pipeline.read_metadata(nnspec.export(network))["parity"] == parity


def test_compile_checks_parity_at_the_scale_of_its_standardization(tmp_path, capsys):
    """``nnspec compile`` and ``nnspec.compile`` write the same model; its random parity inputs
    are drawn around the training split's mean, with its deviation."""
    spec = nnspec.load_spec(IRIS)
    compiled = nnspec.compile(spec, tmp_path / "api.onnx")
    assert cli.main(["compile", str(IRIS), "-o", str(tmp_path / "cli.onnx")]) == 0
    assert "untrained (seed 0)" in capsys.readouterr().out
    assert _metadata(tmp_path / "api.onnx") == _metadata(tmp_path / "cli.onnx")
    network = compiled.network
    assert network.x_mean[0] == pytest.approx(5.84, abs=0.1)  # sepal length, in cm
    z = np.random.default_rng(0).standard_normal((8, 4))
    x = np.asarray(network.x_mean + network.x_scale * z, np.float32)
    got = Model(tmp_path / "api.onnx", device="cpu").run(x)["probabilities"]
    want = network.predict(x)["probabilities"]
    parity = pipeline.read_metadata(compiled.model)["parity"]
    assert parity["max_abs_err"] == np.abs(got.astype(np.float64) - want).max()
    assert parity["inputs"] == "random" and parity["samples"] == 8


@pytest.fixture
def broken_lowering(monkeypatch):
    """An exporter bug: the first dense weight is off by 0.01 in the graph."""
    from nnspec.onnxio import to_onnx

    def broken(net, opset=None, data_file=None, metadata=None):
        m = to_onnx(net, opset, data_file, metadata)
        w = next(t for t in m.graph.initializer if t.name == "dense_0.weight")
        a = onnx.numpy_helper.to_array(w) + np.float32(1e-2)
        w.CopyFrom(onnx.numpy_helper.from_array(a, w.name))
        return m

    monkeypatch.setattr(importlib.import_module("nnspec.onnxio.lower"), "to_onnx", broken)


def test_a_failed_parity_check_is_an_error_that_writes_nothing(tmp_path, broken_lowering):
    result = nnspec.train(nnspec.load_spec(IRIS))
    out = tmp_path / "m.onnx"
    with pytest.raises(ParityError) as info:
        nnspec.export(result, out)
    message = str(info.value)
    assert message.startswith(f"{out}: parity check on the test split: ")
    assert "does not match the NumPy network on 30 samples: max abs error " in message
    assert message.endswith("no model written")
    assert info.value.exit_code == 3
    with pytest.raises(
        ParityError, match=r"parity check on random inputs \(seed 0\): .* on 8 samples"
    ):
        nnspec.export(result.network, out)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_parity_check_exits_with_its_code_and_message(tmp_path, broken_lowering, capsys):
    out = tmp_path / "m.onnx"
    assert cli.main(["compile", str(IRIS), "-o", str(out)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(
        f"{out}: parity check on random inputs (seed 0): the exported model does "
    )
    assert "Traceback" not in err
    assert cli.main(["train", str(IRIS), "-o", str(out), "-q"]) == 3
    assert "parity check on the test split: " in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_every_needs_a_directory_in_python_too(tmp_path):
    text = IRIS.read_text().replace("  seed: 0\n", "  seed: 0\n  checkpoint_every: 5\n")
    assert "checkpoint_every" in text
    with pytest.raises(
        SpecError, match=r"train.checkpoint_every: needs a directory .*checkpoint_dir"
    ):
        nnspec.train(nnspec.load_spec(text))
    result = nnspec.train(nnspec.load_spec(text), checkpoint_dir=tmp_path)
    assert ckpt.read_checkpoint(tmp_path).meta.reason == "periodic"
    assert result.metrics["accuracy"] >= 0.95


def test_resume_from_a_directory_path(tmp_path):
    spec = nnspec.load_spec(IRIS)
    reference = nnspec.train(spec)
    stop = StopRequest()

    def on_batch(epoch, batch):
        if (epoch, batch) == (5, 1):
            stop.set()

    with pytest.raises(TrainingInterrupted):
        nnspec.train(spec, checkpoint_dir=tmp_path, stop=stop, on_batch=on_batch)
    resumed = nnspec.train(spec, resume=str(tmp_path))
    assert resumed.resumed_from == "epoch 6, batch 2 (of 7)"
    assert resumed.history.epochs_run == reference.history.epochs_run
    assert resumed.metrics == reference.metrics
    for k, v in reference.network.arrays().items():
        assert np.array_equal(resumed.network.arrays()[k], v), k
