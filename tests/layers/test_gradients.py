"""Analytic gradients against float64 central differences (relative error < 1e-6)."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
from gradient_checks import (
    central_differences,
    gradient_error,
    half_squared_error,
    rel_error,
    training_forward,
)
from helpers import mlp_spec

import nnspec
from nnspec.layers import LAYERS, ShapeError
from nnspec.nn.activations import ACTIVATIONS

HIDDEN = [a for a, f in ACTIVATIONS.items() if not f.output_only]


def numeric_gradients(network, x, y) -> dict[str, np.ndarray]:
    def loss():
        return network.loss_and_gradients(x, y)[0]

    return {name: central_differences(loss, p) for name, p in network.parameters().items()}


def assert_gradients_match(network, x, y):
    _, analytic = network.loss_and_gradients(x, y)
    numeric = numeric_gradients(network, x, y)
    assert analytic.keys() == numeric.keys()
    for name in analytic:
        err = rel_error(analytic[name], numeric[name])
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def data(task, n=7, features=4, units=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)) * 2 + 1
    if task == "classification":
        y = rng.integers(0, max(units, 2), size=n)
    else:
        y = rng.normal(size=(n, units)) * 3
    return x, y


# Every activation in the hidden layer, every loss with the output it requires, and mse with
# every output activation (one-hot targets for classification, real targets for regression).
CASES = [(h, "softmax", "cross_entropy", "classification", 3) for h in HIDDEN]
CASES += [(h, "logistic", "binary_cross_entropy", "classification", 3) for h in HIDDEN]
CASES += [("tanh", "logistic", "binary_cross_entropy", "classification", 1)]
CASES += [("logistic", out, "mse", "classification", 3) for out in ACTIVATIONS]
CASES += [(h, "identity", "mse", "regression", 2) for h in HIDDEN]


@pytest.mark.parametrize(
    "hidden,output,loss,task,units", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[4]}" for c in CASES]
)
def test_activation_loss_gradients(hidden, output, loss, task, units):
    spec = mlp_spec(hidden, output, loss, task, units=units)
    network = nnspec.build_network(spec)
    assert network.dtype == np.float64
    x, y = data(task, units=units)
    network.fit_preprocess(x, y if task == "regression" else None)
    assert_gradients_match(network, x, y)


def test_weight_decay_gradient():
    spec = mlp_spec("gaussian", "softmax", "cross_entropy", extra=", weight_decay: 0.3")
    network = nnspec.build_network(spec)
    x, y = data("classification")
    assert_gradients_match(network, x, y)


def test_standardized_regression_targets_gradient():
    text = mlp_spec("tanh", "identity", "mse", "regression", units=2).source.text
    spec = nnspec.load_spec(text + "preprocess: {standardize: true, standardize_target: true}\n")
    network = nnspec.build_network(spec)
    x, y = data("regression", units=2)
    network.fit_preprocess(x, y)
    assert not np.allclose(network.y_scale, 1)
    assert_gradients_match(network, x, y)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_every_registered_kind_gradient(kind):
    """Each registry example on its own under a half squared error: parameters and input."""
    for example, in_shape in LAYERS[kind].examples():
        rng = np.random.default_rng(1)
        layer = LAYERS[kind].layer(example, "under_test", in_shape, rng, np.float64)
        x = rng.normal(size=(5, *in_shape[1:]))
        target = rng.normal(size=(5, *example.output_shape(in_shape)[1:]))
        dx = layer.backward(training_forward(layer, x) - target)
        analytic = {name: g.copy() for name, g in layer.grads.items()}
        loss = partial(half_squared_error, layer, x, target)
        for name, p in layer.params.items():
            err = rel_error(analytic[name], central_differences(loss, p))
            assert err < 1e-6, (kind, example, name)
        assert rel_error(dx, central_differences(loss, x)) < 1e-6, (kind, example, "input")


def test_loss_and_gradients_returns_copies_keyed_like_parameters():
    network = nnspec.build_network(mlp_spec())
    x, y = data("classification")
    loss, grads = network.loss_and_gradients(x, y)
    assert isinstance(loss, float) and loss > 0
    assert (
        list(grads)
        == list(network.parameters())
        == ["dense_0.weight", "dense_0.bias", "dense_1.weight", "dense_1.bias"]
    )
    assert network.parameters()["dense_0.weight"].shape == (4, 5)
    assert network.parameters()["dense_1.bias"].shape == (3,)
    grads["dense_0.weight"][...] = 0
    _, again = network.loss_and_gradients(x, y)
    assert np.abs(again["dense_0.weight"]).sum() > 0


def chain_of_every_kind(shape: tuple) -> tuple[list[dict], tuple]:
    """Hidden layers holding one example of every registered kind, from ``shape`` (images):
    at each step, the first pending kind whose example keeps the input's rank (an image stays
    an image), else the first one that fits at all (flatten), so the image layers come before
    the flat ones. Built from the registry, it follows any kind added or removed. Returns the
    layers (as spec mappings) and their output shape."""
    pending, layers = list(LAYERS), []
    while pending:
        fits = []
        for kind in pending:
            for example, _ in LAYERS[kind].examples():
                if ACTIVATIONS[getattr(example, "activation", "identity")].output_only:
                    continue
                try:
                    out = example.output_shape(shape)
                except ShapeError:
                    continue
                fits.append((len(out) != len(shape), kind, example, out))
                break
        if not fits:
            break
        _, kind, example, shape = min(fits, key=lambda fit: fit[0])  # first with the rank kept
        layers.append(example.model_dump(mode="json", exclude_none=True))
        pending.remove(kind)
    return layers, shape


def network_of_every_kind():
    """A float64 network of every registered kind on (2, 11, 10) images, then a softmax head."""
    hidden, shape = chain_of_every_kind((None, 2, 11, 10))
    if len(shape) != 2:
        hidden.append({"kind": "flatten"})  # the head takes flat features
    spec = nnspec.load_spec(
        "spec_version: 1\nname: every-kind\ntask: classification\n"
        "input: {shape: [2, 11, 10]}\nclasses: [a, b, c]\n"
        f"layers: {json.dumps([*hidden, {'kind': 'dense', 'units': 3, 'activation': 'softmax'}])}\n"
        "loss: cross_entropy\ntrain: {dtype: float64, seed: 4, weight_decay: 0.01}\n"
    )
    return nnspec.build_network(spec)


def test_the_chain_holds_every_kind():
    network = network_of_every_kind()
    kinds = {layer.kind for layer in network.spec.layers}
    assert kinds == set(LAYERS)
    assert network.spec.layers[0].kind in {k for k in LAYERS if LAYERS[k].takes_images}


@pytest.mark.parametrize("first_trainable", [True, False])
def test_network_gradients_through_every_kind(first_trainable):
    """The whole network, images standardized per channel, random layers' masks fixed: the
    loss gradient of every trainable parameter (a frozen first layer has none)."""
    network = network_of_every_kind()
    first = next(layer for layer in network.layers if layer.params)
    first.trainable = first_trainable  # as trainable: false with init.from sets it
    rng = np.random.default_rng(5)
    x = rng.normal(size=(9, 2 * 11 * 10)) * 3 + 1  # flat rows, reshaped to (9, 2, 11, 10)
    y = rng.integers(0, 3, size=9)
    network.fit_preprocess(x)
    assert network.x_mean.shape == (2, 1, 1)
    random_layers = [layer for layer in network.layers if hasattr(layer, "rng")]

    def loss_and_gradients():
        for layer in random_layers:  # the same masks at every evaluation
            layer.rng = np.random.default_rng(0)
        return network.loss_and_gradients(x, y)

    _, analytic = loss_and_gradients()
    params = network.trainable_parameters()
    assert analytic.keys() == params.keys()
    assert (f"{first.name}.weight" in params) == first_trainable
    for name, p in params.items():
        numeric = central_differences(lambda: loss_and_gradients()[0], p)
        # Which layer follows which depends on the registry, so a bias can sit right before a
        # normalization that makes its gradient exactly zero.
        err = gradient_error(analytic[name], numeric)
        assert err < 1e-6, f"{name}: relative error {err:.2e}"
