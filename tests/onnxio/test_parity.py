"""Exported graphs against the NumPy forward pass: onnxruntime and onnx's ReferenceEvaluator."""

from __future__ import annotations

import importlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import SPECS
from helpers import mlp_spec
from reference_ops import reference_evaluator

import nnspec
from nnspec import pipeline
from nnspec.layers import LAYERS
from nnspec.nn.activations import ACTIVATIONS
from nnspec.nn.network import Network

RTOL, ATOL = 1e-4, 1e-5


def run_both(model: onnx.ModelProto, x) -> list[dict[str, np.ndarray]]:
    if isinstance(x, dict):  # a tabular model's raw columns: one input each
        feeds = {k: v if v.dtype == object else v.astype(np.float32) for k, v in x.items()}
    else:
        feeds = {"input": x.astype(np.float32)}
    names = [o.name for o in model.graph.output]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = reference_evaluator(model)
    return [
        dict(zip(names, sess.run(None, feeds), strict=True)),
        dict(zip(names, ref.run(None, feeds), strict=True)),
    ]


def assert_parity(network: Network, model: onnx.ModelProto, x):
    if isinstance(x, dict):
        want = network.predict(x)
    else:
        x = network.as_samples(x)  # flat data rows -> (batch, channels, height, width) images
        want = network.predict(x.astype(np.float32))
    for got in run_both(model, x):
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert got[key].shape == value.shape, key
            if key == "label":
                # Labels follow the probabilities; ties within float error may differ.
                probs = want["probabilities"]
                top2 = np.sort(probs, axis=1)[:, -2:]
                clear = (top2[:, 1] - top2[:, 0]) > 1e-4
                np.testing.assert_array_equal(got[key][clear], value[clear])
            else:
                np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL, err_msg=key)


def shipped_network(path) -> tuple[Network, np.ndarray]:
    """The spec's seeded network with preprocessing fitted on its data, and 37 input rows (from
    the test split, or random images for a spec without data, such as AlexNet)."""
    spec = nnspec.load_spec(path)
    network = nnspec.build_network(spec, dtype="float32")
    dataset = pipeline.load_data(spec)
    if dataset is None:
        return network, np.random.default_rng(0).normal(size=(37, *network.shape))
    splits = pipeline.split_data(spec, dataset)
    network.tabular = dataset.encoder  # a tabular spec: raw columns in
    network.fit_preprocess(splits.train.x, splits.train.y)
    if dataset.encoder is not None:
        return network, _Rows(splits.test.columns)
    return network, splits.test.x


class _Rows(dict):
    """Raw columns that slice like rows (``x[:batch]``)."""

    def __getitem__(self, key):
        if isinstance(key, slice):
            return {k: v[key] for k, v in self.items()}
        return super().__getitem__(key)


# AlexNet through onnx's pure-Python ReferenceEvaluator takes about a second per image.
SLOW_REFERENCE = {"alexnet"}


@pytest.mark.parametrize(
    "path,batch",
    [
        pytest.param(p, b, marks=[pytest.mark.slow] if p.stem in SLOW_REFERENCE and b > 1 else [])
        for p in SPECS
        for b in (1, 37)
    ],
    ids=[f"{p.stem}-{b}" for p in SPECS for b in (1, 37)],
)
def test_shipped_spec_parity(path, batch):
    network, x = shipped_network(path)
    model = nnspec.export(network)
    assert_parity(network, model, x[:batch])


def test_parity_of_a_trained_model(tmp_path):
    spec = nnspec.load_spec(SPECS[0].parent / "iris.yaml")
    network = nnspec.train(spec).network
    model = nnspec.export(network, tmp_path / "iris.onnx")
    x = np.random.default_rng(0).normal(5, 2, size=(37, 4))
    assert_parity(network, model, x)
    assert onnx.load(tmp_path / "iris.onnx") == model


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("opset", [13, 18, 22])
def test_every_activation_at_several_opsets(activation, opset):
    output = activation if ACTIVATIONS[activation].output_only else "identity"
    hidden = "tanh" if ACTIVATIONS[activation].output_only else activation
    spec = mlp_spec(hidden, output, "mse", "classification", dtype="float32")
    network = nnspec.build_network(spec)
    x = np.random.default_rng(1).normal(size=(37, 4))
    network.fit_preprocess(x + 3)
    model = nnspec.export(network, opset=opset)
    assert model.opset_import[0].version == opset
    assert_parity(network, model, x)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_every_registered_kind_parity(kind):
    """Each registry example in a small network (example, flatten where needed, dense head)."""
    for example, in_shape in LAYERS[kind].examples():
        if ACTIVATIONS[getattr(example, "activation", "identity")].output_only:
            continue  # softmax is an output: test_every_activation_at_several_opsets has it
        layer = json.dumps(example.model_dump(mode="json", exclude_none=True))
        flat = len(example.output_shape(in_shape)) == 2
        layers = [
            layer,
            *([] if flat else ['{"kind": "flatten"}']),
            '{"kind": "dense", "units": 3}',
        ]
        spec = nnspec.load_spec(
            "spec_version: 1\nname: t\ntask: regression\n"
            f"input: {{shape: {list(in_shape[1:])}}}\n"
            f"layers: [{', '.join(layers)}]\nloss: mse\n"
        )
        network = nnspec.build_network(spec, dtype="float32")
        rng = np.random.default_rng(2)
        for values in network.state().values():  # batchnorm: running statistics in use
            values[...] = rng.uniform(0.5, 2.0, size=values.shape)
        x = rng.normal(size=(37, *in_shape[1:]))
        model = nnspec.export(network)
        assert_parity(network, model, x)
        assert_parity(network, model, x[:1])


def test_model_is_checked_and_loadable_by_old_runtimes():
    network, _ = shipped_network(SPECS[0].parent / "iris.yaml")
    model = nnspec.export(network)
    assert model.ir_version == 8  # opset 18 needs IR 8; onnx would write its newest
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["nnspec_task"] == "classification"
    assert "versicolor" in meta["nnspec_class_names"]
    assert meta["nnspec_spec_yaml"] == network.spec.source.text
    node_names = [n.name for n in model.graph.node]
    assert "dense_0/Gemm" in node_names and "dense_1/softmax" in node_names


def test_export_is_deterministic():
    a = nnspec.export(shipped_network(SPECS[0].parent / "iris.yaml")[0]).SerializeToString()
    b = nnspec.export(shipped_network(SPECS[0].parent / "iris.yaml")[0]).SerializeToString()
    assert a == b


def test_single_logistic_unit_gives_two_probabilities():
    spec = mlp_spec("tanh", "logistic", "binary_cross_entropy", units=1, dtype="float32")
    network = nnspec.build_network(spec)
    x = np.random.default_rng(3).normal(size=(37, 4))
    model = nnspec.export(network)
    assert_parity(network, model, x)
    probs = run_both(model, x)[0]["probabilities"]
    assert probs.shape == (37, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)


def test_parity_check_fails_loudly_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from nnspec import cli
    from nnspec.errors import ParityError
    from nnspec.onnxio import parity, to_onnx

    network, x = shipped_network(SPECS[0].parent / "iris.yaml")
    model = nnspec.export(network)
    network.parameters()["dense_0.weight"][0, 0] += 1e-2  # the graph no longer matches
    with pytest.raises(ParityError, match="does not match the NumPy network"):
        parity.check_parity(network, model, x)

    def broken_to_onnx(net, opset=None, data_file=None, metadata=None):
        m = to_onnx(net, opset, data_file, metadata)
        w = next(t for t in m.graph.initializer if t.name == "dense_0.weight")
        w.CopyFrom(
            onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(w) + np.float32(1e-2), w.name)
        )
        return m

    module = importlib.import_module("nnspec.onnxio.lower")  # the function shadows it
    monkeypatch.setattr(module, "to_onnx", broken_to_onnx)
    out = tmp_path / "iris.onnx"
    code = cli.main(["train", str(SPECS[0].parent / "iris.yaml"), "-o", str(out), "-q"])
    assert code == 3
    assert "does not match" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []
