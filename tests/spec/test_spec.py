"""Loading specs: defaults, YAML details, the registry, the Python entry points."""

from __future__ import annotations

import pytest
from conftest import SPECS

import nnspec
from nnspec.layers import LAYERS, Registry
from nnspec.spec.messages import models_at

BASE = """spec_version: 1
name: t
task: classification
input: {features: 2}
layers: [{kind: dense, units: 2, activation: softmax}]
loss: cross_entropy
"""


def test_defaults():
    spec = nnspec.load_spec(BASE)
    assert spec.train.optimizer.kind == "adam" and spec.train.optimizer.lr == 0.001
    assert spec.train.lr_schedule.kind == "constant"
    assert spec.preprocess.standardize is True
    assert spec.export.opset == 18
    assert spec.layer_names() == ["dense_0"]


def test_exponent_floats_without_a_dot_are_numbers():
    spec = nnspec.load_spec(
        BASE + "train: {optimizer: {kind: sgd, lr: 1e-3}, weight_decay: 5E-4}\n"
    )
    assert spec.train.optimizer.lr == 0.001 and spec.train.weight_decay == 0.0005


def test_unquoted_no_gets_a_quoting_hint():
    with pytest.raises(nnspec.SpecError) as e:
        nnspec.load_spec(BASE + "classes: [no, yes]\n")
    assert "classes[0]: expected a string, got false; quote words like yes, no" in str(e.value)


def test_spec_is_frozen():
    spec = nnspec.load_spec(BASE)
    with pytest.raises(Exception, match="frozen"):
        spec.layers[0].units = 3


def test_source_keeps_text_file_and_hash():
    spec = nnspec.load_spec(SPECS[0])
    assert spec.source.file == str(SPECS[0])
    assert spec.source.text == SPECS[0].read_text()
    assert len(spec.source.sha256) == 64


def test_layer_union_is_the_registry():
    """The spec's `layers` items are validated against exactly the registered spec models."""
    import typing

    from nnspec.spec import models

    union = typing.get_args(typing.get_args(models.LayerSpec)[0])
    assert union == tuple(kind.spec for kind in LAYERS.values())
    item = typing.get_args(nnspec.Spec.model_fields["layers"].annotation)[0]
    assert item is models.LayerSpec
    for name, kind in LAYERS.items():
        assert kind.name == name and kind.examples() and kind.docs, name


def test_registry_refuses_duplicates_and_names_known_kinds():
    entry = LAYERS["dense"]
    before = list(LAYERS)
    with pytest.raises(ValueError) as e:
        LAYERS.register(entry)
    assert str(e.value) == (
        "layer kind 'dense' is already registered (spec nnspec.layers.dense.DenseSpec); "
        "expected a new kind name for nnspec.layers.dense.DenseSpec"
    )
    fresh = Registry()
    with pytest.raises(ValueError, match="'dense' is already registered"):
        fresh.register(entry, entry)
    assert len(fresh) == 0  # a refused call adds nothing, not even the first of the two
    assert list(LAYERS) == before
    with pytest.raises(KeyError) as e:
        LAYERS["conv9d"]
    assert e.value.args[0] == (
        f"unknown layer kind 'conv9d'; expected one of the registered kinds: {', '.join(before)}"
    )
    with pytest.raises(TypeError, match="expected a LayerKind record, got the class DenseSpec"):
        fresh.register(entry.spec)


def test_a_kind_needs_a_kind_literal():
    from pydantic import Field

    from nnspec.layers.base import LayerSpecBase, kind_of

    class NoKind(LayerSpecBase):
        """A spec model that forgot its tag."""

        size: int = Field(default=1, description="Some size of the layer.")

    with pytest.raises(TypeError, match="NoKind: expected a field kind: Literal"):
        kind_of(NoKind)


def test_layer_state_is_per_instance():
    """Layers without running statistics each get their own (empty) state dict."""
    a, b = (
        LAYERS["flatten"].layer(LAYERS["flatten"].examples()[0][0], n, (None, 3), None, "f4")
        for n in "ab"
    )
    a.state["x"] = 1
    assert b.state == {} and a.state == {"x": 1}


def test_models_at_walks_unions():
    models = [m.__name__ for m, _ in models_at(nnspec.Spec, ("train", "optimizer", "sgd"))]
    assert models == ["SGDSpec"]


def test_every_shipped_spec_validates():
    for path in SPECS:
        spec = nnspec.load_spec(path)
        io, rows = nnspec.resolve(spec)
        assert rows[-1].output_shape == (None, io.outputs)


def _issue(text: str) -> str:
    with pytest.raises(nnspec.SpecError) as e:
        nnspec.resolve(nnspec.load_spec(text))
    return str(e.value)


IRIS = BASE.replace("input: {features: 2}\n", "data: {builtin: iris}\n").replace(
    "units: 2", "units: 3"
)


def test_input_names_must_match_the_data_columns():
    text = (
        IRIS
        + "input: {features: 4, names: [petal_width, petal_length, sepal_width, sepal_length]}\n"
    )
    assert "input.names: the data's feature columns are ['sepal_length'" in _issue(text)
    same = "input: {features: 4, names: [sepal_length, sepal_width, petal_length, petal_width]}\n"
    nnspec.resolve(nnspec.load_spec(IRIS + same))


@pytest.mark.parametrize(
    "extra,expected",
    [
        ("classes: [a, a]\n", "classes[1]: class 'a' is already listed at classes[0]"),
        (
            "train: {lr_schedule: {kind: cosine, min_lr: 0.5}}\n",
            "train.lr_schedule.min_lr: expected min_lr <= the optimizer's lr (0.001), got 0.5",
        ),
    ],
)
def test_cross_field_rules(extra, expected):
    assert expected in _issue(BASE + extra)


def test_classes_on_regression_is_an_error():
    text = BASE.replace("classification", "regression").replace("softmax", "identity")
    text = text.replace("cross_entropy", "mse")
    assert "classes: classes applies to classification only" in _issue(text + "classes: [a, b]\n")


@pytest.mark.parametrize(
    "data,expected",
    [
        (
            "{csv: x.csv, target: y, features: [a, y]}",
            "data.features[1]: 'y' is the target; a feature column cannot also be the target",
        ),
        ("{csv: x.csv, target: [y, a]}", "data.target: classification expects one target column"),
        # "csv" is both a key and the union's tag: the error must still point at features.
        ("{csv: x.csv, target: y, features: []}", "data.features: expected at least 1 item"),
    ],
)
def test_csv_column_rules(tmp_path, data, expected):
    (tmp_path / "x.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    path = tmp_path / "s.yaml"
    path.write_text(BASE.replace("input: {features: 2}", f"data: {data}"))
    with pytest.raises(nnspec.SpecError) as e:
        nnspec.resolve(nnspec.load_spec(path))
    assert expected in str(e.value) and f"{path}:4:" in str(e.value)


def test_a_split_that_leaves_nothing_is_located():
    with pytest.raises(nnspec.SpecError) as e:
        nnspec.train(nnspec.load_spec(IRIS + "train: {validation_fraction: 0.001}\n"))
    assert (
        ":7:30: train.validation_fraction: 0.001 of 120 samples leaves the held-out part empty"
        in (str(e.value))
    )
