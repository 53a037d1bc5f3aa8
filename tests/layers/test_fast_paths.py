"""The trainer's fast paths compute exactly what the plain ones do.

Packed parameters, the flush of subnormal optimizer state, the skipped input gradient of the
lowest layer, in-place activations and the tap-wise max pooling are optimizations: each test
here holds one of them to the straightforward computation it replaces.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import nnspec
from nnspec import pipeline
from nnspec.layers import window
from nnspec.layers.conv import Conv2d, Conv2dSpec
from nnspec.layers.dense import Dense, DenseSpec
from nnspec.layers.pool import MaxPool2d, MaxPool2dSpec
from nnspec.nn.activations import ACTIVATIONS
from nnspec.nn.packing import pack
from nnspec.spec.models import AdamSpec, SGDSpec
from nnspec.training import loop, optimizers
from nnspec.training.optimizers import FLUSH_EVERY, SGD, Adam, flush_subnormals


def test_pack_keeps_values_shapes_and_alignment():
    rng = np.random.default_rng(0)
    arrays = {"a": rng.normal(size=(3, 5)), "b": rng.normal(size=7), "c": rng.normal(size=(2,))}
    packed = pack(arrays)
    assert list(packed) == ["a", "b", "c"]
    for k, v in arrays.items():
        assert packed[k].shape == v.shape
        np.testing.assert_array_equal(packed[k], v)
        assert np.shares_memory(packed[k], packed.flat)
        assert packed[k].ctypes.data % 64 == 0
    # The gaps between arrays are zeros, so reductions over the flat buffer see only values.
    assert np.isclose(
        np.vdot(packed.flat, packed.flat), sum(np.vdot(v, v) for v in arrays.values())
    )
    like = packed.like()
    assert like.flat.shape == packed.flat.shape and not like.flat.any()
    assert like["a"].shape == (3, 5) and np.shares_memory(like["a"], like.flat)


@pytest.mark.parametrize(
    "kind, spec",
    [
        (SGD, SGDSpec(kind="sgd", lr=0.05, momentum=0.9)),
        (SGD, SGDSpec(kind="sgd", lr=0.05, momentum=0.9, nesterov=True)),
        (SGD, SGDSpec(kind="sgd", lr=0.05)),
        (Adam, AdamSpec(kind="adam", lr=0.01)),
    ],
    ids=["momentum", "nesterov", "plain", "adam"],
)
@pytest.mark.parametrize("chunk", [None, 16])
def test_packed_update_is_bit_identical_to_per_array(kind, spec, chunk, monkeypatch):
    if chunk:  # many chunks: still the same numbers
        monkeypatch.setattr(optimizers, "CHUNK", chunk)
    rng = np.random.default_rng(1)
    shapes = {"w1": (4, 3), "b1": (3,), "w2": (3, 2), "b2": (2,)}
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    plain = {k: v.copy() for k, v in start.items()}
    packed = pack(start)
    grads_packed = packed.like()
    opt_plain, opt_packed = kind(spec, plain), kind(spec, packed)
    for i in range(25):
        g = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
        for k in g:
            grads_packed[k][...] = g[k]
        opt_plain.step(plain, g)
        opt_packed.step(packed, grads_packed)
        if i % 5 == 4:
            opt_plain.flush()
            opt_packed.flush()
    for k in shapes:
        np.testing.assert_array_equal(packed[k], plain[k])
        assert packed[k].dtype == np.float32


def test_flush_zeroes_subnormals_only():
    tiny = np.finfo(np.float32).smallest_normal
    a = np.array([tiny / 4, -tiny / 1000, tiny, -2 * tiny, 0.5, 0.0], dtype=np.float32)
    flush_subnormals(a)
    np.testing.assert_array_equal(a, [0, 0, tiny, -2 * tiny, 0.5, 0])


def test_adam_moments_of_a_dead_unit_never_stay_subnormal():
    """A parameter whose gradient becomes zero (a dead ReLU unit): its moments decay by b1 and
    b2 each step, through the subnormal range that makes CPUs slow, unless flushed."""
    params = {"w": np.ones(4, dtype=np.float32)}
    opt = Adam(AdamSpec(kind="adam", lr=0.01), params)
    opt.step(params, {"w": np.full(4, 1e-16, dtype=np.float32)})
    zero = {"w": np.zeros(4, dtype=np.float32)}
    tiny = np.finfo(np.float32).smallest_normal
    worst = 0
    for step in range(2, 30000):
        opt.step(params, zero)
        if step % FLUSH_EVERY == 0:
            opt.flush()
        for a in (opt.m["w"], opt.v["w"]):
            subnormal = (a != 0) & (np.abs(a) < tiny)
            worst = max(worst, int(subnormal.any()))
            if subnormal.any():
                # Between flushes at most FLUSH_EVERY steps may pass; never more.
                assert step % FLUSH_EVERY != 0
    assert not opt.m["w"].any() and not opt.v["w"].any()
    assert worst == 1  # the decay did reach the subnormal range: the flush had work to do


def test_training_loop_flushes_every_few_steps(monkeypatch):
    calls = []
    monkeypatch.setattr(Adam, "flush", lambda self: calls.append(self.t))
    spec = nnspec.load_spec(ROOT / "specs" / "mcycle.yaml")
    spec = spec.model_copy(
        update={"train": spec.train.model_copy(update={"epochs": 3, "early_stopping": None})}
    )
    pipeline.train(spec)
    assert calls and all(t % FLUSH_EVERY == 0 for t in calls)
    assert calls == list(range(FLUSH_EVERY, calls[-1] + 1, FLUSH_EVERY))


def test_training_packs_the_network_and_layers_train_the_views():
    spec = nnspec.load_spec(ROOT / "specs" / "iris.yaml")
    network = pipeline.train(spec).network
    params, grads = network.pack_trainable()
    live = network.trainable_parameters()
    assert params.owns(live)
    for v in live.values():
        assert np.shares_memory(v, params.flat)
    # Packing again is free and keeps the same buffers.
    assert network.pack_trainable()[0] is params


def test_lowest_layer_skips_its_input_gradient_and_keeps_its_weight_gradient():
    rng = np.random.default_rng(2)
    layer = Dense(DenseSpec(kind="dense", units=5, activation="tanh"), "d", (None, 4), rng, "f8")
    x, da = rng.normal(size=(6, 4)), rng.normal(size=(6, 5))
    layer.forward(x, training=True)
    dx = layer.backward(da)
    full = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x, training=True)
    assert layer.backward(da, input_grad=False) is None
    for k in full:
        np.testing.assert_array_equal(layer.grads[k], full[k])
    assert dx.shape == x.shape


def test_conv_without_input_gradient_keeps_weight_gradient():
    rng = np.random.default_rng(3)
    spec = Conv2dSpec(kind="conv2d", filters=4, kernel_size=3, groups=2, activation="relu")
    layer = Conv2d(spec, "c", (None, 2, 7, 6), rng, "f8")
    x = rng.normal(size=(3, 2, 7, 6))
    a = layer.forward(x, training=True)
    da = rng.normal(size=a.shape)
    layer.backward(da)
    full = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x, training=True)
    assert layer.backward(da, input_grad=False) is None
    for k in full:
        np.testing.assert_allclose(layer.grads[k], full[k], rtol=1e-12)


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n != "softmax"])
def test_in_place_forward_equals_the_allocating_one(name):
    act = ACTIVATIONS[name]
    z = np.random.default_rng(4).normal(scale=3, size=(5, 7)).astype(np.float32)
    z[0, :3] = [-200.0, 200.0, 0.0]  # exp overflow region of the logistic
    expected = act.forward(z.copy())
    got = act.forward_(z.copy())
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert np.isfinite(got).all()


def test_logistic_matches_the_textbook_formula_at_the_extremes():
    z = np.array([-1000.0, -80.0, -5.0, 0.0, 5.0, 80.0, 1000.0])
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(ACTIVATIONS["logistic"].forward(z), expected, rtol=1e-15)


def test_maxpool_ties_route_the_gradient_to_the_first_maximum():
    """After a ReLU many windows hold only zeros: all of the gradient goes to the window's
    first (row-major) maximum, as PyTorch routes it, never split or duplicated."""
    spec = MaxPool2dSpec(kind="maxpool2d", kernel_size=2)
    layer = MaxPool2d(spec, "p", (None, 1, 4, 4), None, "f4")
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 2.0  # a tie at 2 in the top-left window
    x[0, 0, 3, 3] = 1.0  # bottom-right window: its last tap
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y[0, 0], [[2, 0], [0, 1]])
    dx = layer.backward(np.ones((1, 1, 2, 2), dtype=np.float32))
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[0, 1] = expected[0, 2] = expected[2, 0] = expected[3, 3] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_maxpool_forward_agrees_with_a_window_maximum():
    """Against NumPy's own sliding windows over the NCHW input (not window.py's views)."""
    rng = np.random.default_rng(5)
    for kernel, stride, padding in [(2, None, "valid"), (3, 2, "valid"), (3, 1, 1), (2, 2, "same")]:
        spec = MaxPool2dSpec(kind="maxpool2d", kernel_size=kernel, stride=stride, padding=padding)
        layer = MaxPool2d(spec, "p", (None, 2, 7, 6), None, "f8")
        x = rng.normal(size=(3, 2, 7, 6))
        top, left, bottom, right = layer.window.pads
        xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=-np.inf)
        st_h, st_w = layer.window.stride
        view = np.lib.stride_tricks.sliding_window_view(xp, (kernel, kernel), axis=(2, 3))
        expected = view[:, :, ::st_h, ::st_w].max(axis=(-2, -1))
        np.testing.assert_array_equal(layer.forward(x, training=True), expected)
        np.testing.assert_array_equal(layer.forward(x), expected)


def test_image_layers_hand_on_batch_last_memory_without_copies():
    """conv2d and pooling return (N, C, H, W) views of (C, H, W, N) memory, and take such a
    view back without copying it (window.to_chwn is then free)."""
    rng = np.random.default_rng(6)
    conv = Conv2d(
        Conv2dSpec(kind="conv2d", filters=4, kernel_size=3), "c", (None, 2, 8, 8), rng, "f8"
    )
    pool = MaxPool2d(
        MaxPool2dSpec(kind="maxpool2d", kernel_size=2), "p", (None, 4, 6, 6), None, "f8"
    )
    a = conv.forward(rng.normal(size=(5, 2, 8, 8)), training=True)
    assert a.shape == (5, 4, 6, 6) and not a.flags.c_contiguous
    assert np.shares_memory(window.to_chwn(a), a)
    y = pool.forward(a, training=True)
    assert y.shape == (5, 4, 3, 3) and np.shares_memory(window.to_chwn(y), y)
    dx = pool.backward(np.ones_like(y))
    assert dx.shape == a.shape and np.shares_memory(window.to_chwn(dx), dx)


def test_fit_batches_are_the_same_with_and_without_the_preshuffled_copy(monkeypatch):
    spec = nnspec.load_spec(ROOT / "specs" / "iris.yaml")
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": 5})})
    a = pipeline.train(spec).network
    monkeypatch.setattr(loop, "PRESHUFFLE_BYTES", -1)  # gather batch by batch instead
    b = pipeline.train(spec).network
    for k, v in a.parameters().items():
        np.testing.assert_array_equal(v, b.parameters()[k])
