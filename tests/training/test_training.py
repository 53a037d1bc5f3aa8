"""Seeded training on the shipped specs: accuracy, determinism, early stopping, optimizers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import nnspec
from nnspec.spec.models import AdamSpec, CosineLR, SGDSpec, StepLR
from nnspec.training.optimizers import SGD, Adam
from nnspec.training.schedules import learning_rate


def spec(name: str) -> nnspec.Spec:
    return nnspec.load_spec(ROOT / "specs" / f"{name}.yaml")


def test_iris_accuracy():
    result = nnspec.train(spec("iris"))
    assert result.metrics["accuracy"] >= 0.95
    assert result.history.stopped_early  # patience 20 triggers well before 200 epochs


def test_iris2d_textbook_setting():
    result = nnspec.train(spec("iris2d"))
    assert result.network.io.features == 2
    assert result.metrics["accuracy"] >= 0.9


def test_digits_accuracy():
    assert nnspec.train(spec("digits")).metrics["accuracy"] >= 0.95


def test_mcycle_r2():
    result = nnspec.train(spec("mcycle"))
    assert result.metrics["r2"] >= 0.7
    assert result.metrics["mse"] > 0


@pytest.mark.slow
def test_dbn_accuracy():
    assert nnspec.train(spec("dbn")).metrics["accuracy"] >= 0.95


def test_same_seed_gives_bit_identical_weights():
    a = nnspec.train(spec("iris")).network
    b = nnspec.train(spec("iris")).network
    for (ka, va), (kb, vb) in zip(a.parameters().items(), b.parameters().items(), strict=True):
        assert ka == kb and va.dtype == vb.dtype == np.float32
        assert va.tobytes() == vb.tobytes(), ka


def test_other_seed_gives_other_weights():
    text = spec("iris").source.text.replace("seed: 0", "seed: 1")
    a = nnspec.train(spec("iris")).network
    b = nnspec.train(nnspec.load_spec(text)).network
    assert not np.array_equal(a.parameters()["dense_0.weight"], b.parameters()["dense_0.weight"])


def test_early_stopping_restores_best_weights():
    result = nnspec.train(spec("iris"))
    history = result.history
    best = min(row["val_loss"] for row in history.epochs)
    assert history.epochs[history.best_epoch - 1]["val_loss"] == best
    assert history.epochs_run == history.best_epoch + 20  # patience
    # The restored weights reproduce the best epoch's validation loss, not the last one's.
    from nnspec.training.loop import evaluate

    assert evaluate(result.network, result.splits.val)["loss"] == pytest.approx(best, rel=1e-5)


def test_history_has_metrics_per_epoch():
    result = nnspec.train(spec("digits"))
    row = result.history.epochs[0]
    assert {"epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(row)
    assert [r["epoch"] for r in result.history.epochs] == list(
        range(1, result.history.epochs_run + 1)
    )
    assert result.history.epochs[-1]["loss"] < result.history.epochs[0]["loss"]


def test_splits_are_stratified_and_disjoint():
    from nnspec import pipeline

    s = spec("iris")
    splits = pipeline.split_data(s, pipeline.load_data(s))
    assert len(splits.test.x) == 30 and np.bincount(splits.test.y).tolist() == [10, 10, 10]
    rows = {tuple(r) for part in (splits.train, splits.val, splits.test) for r in part.x.tolist()}
    total = len(splits.train.x) + len(splits.val.x) + len(splits.test.x)
    assert total == 150
    assert len(rows) >= 147  # iris has a few duplicate rows; no sample is used twice


def test_float64_training_option():
    text = spec("iris").source.text.replace("seed: 0", "seed: 0\n  dtype: float64")
    network = nnspec.train(nnspec.load_spec(text)).network
    assert network.parameters()["dense_0.weight"].dtype == np.float64


def test_divergence_is_reported_with_epoch_and_batch():
    text = spec("mcycle").source.text.replace("lr: 0.05}", "lr: 1.0e+30}")
    text = text.replace("standardize_target: true", "standardize_target: false")
    with pytest.raises(nnspec.NnspecError, match=r"epoch \d+, batch \d+.*smaller"):
        nnspec.train(nnspec.load_spec(text))


def test_schedules():
    assert learning_rate(StepLR(kind="step", step_size=10, gamma=0.5), 0.1, 25, 100) == 0.025
    cos = CosineLR(kind="cosine", min_lr=0.01)
    assert learning_rate(cos, 0.1, 0, 11) == pytest.approx(0.1)
    assert learning_rate(cos, 0.1, 5, 11) == pytest.approx(0.055)
    assert learning_rate(cos, 0.1, 10, 11) == pytest.approx(0.01)


def test_adam_matches_the_paper_formula():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 2))
    grads = [rng.normal(size=(3, 2)) for _ in range(5)]
    params = {"w": p0.copy()}
    opt = Adam(AdamSpec(kind="adam", lr=0.01), params)
    m = v = np.zeros_like(p0)
    ref = p0.copy()
    for t, g in enumerate(grads, start=1):
        opt.step(params, {"w": g})
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        ref -= 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(params["w"], ref, rtol=1e-10)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_formula(nesterov):
    grads = [np.array([1.0]), np.array([2.0]), np.array([-1.0])]
    params = {"w": np.array([0.0])}
    opt = SGD(SGDSpec(kind="sgd", lr=0.1, momentum=0.5, nesterov=nesterov), params)
    v, w = 0.0, 0.0
    for g in grads:
        opt.step(params, {"w": g})
        v = 0.5 * v + g[0]
        w -= 0.1 * ((g[0] + 0.5 * v) if nesterov else v)
    assert params["w"][0] == pytest.approx(w)


def test_regression_history_has_mse_and_r2_in_target_units():
    text = spec("mcycle").source.text.replace("epochs: 2000", "epochs: 300")
    text = text.replace("seed: 0", "seed: 0\n  validation_fraction: 0.2")
    result = nnspec.train(nnspec.load_spec(text))
    last = result.history.epochs[-1]
    assert {"mse", "r2", "val_mse", "val_r2", "val_loss"} <= set(last)
    assert 0.5 < last["r2"] < 1
    # mcycle's acceleration varies by ~48 g: an MSE in g^2, not in standardized units.
    assert last["mse"] > 100
    # The running train MSE is consistent with the loss on standardized targets.
    scale = float(result.network.y_scale[0])
    assert last["mse"] == pytest.approx(last["loss"] * scale**2, rel=1e-3)


def test_r2_is_undefined_for_a_constant_target():
    from nnspec.training.loop import regression_metrics

    assert np.isnan(regression_metrics(np.array([[3.0]]), np.array([[1.0]]))["r2"])
    # With one varying output, R² averages over the outputs where it is defined.
    m = regression_metrics(np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[1.0, 4.0], [3.0, 4.0]]))
    assert m["r2"] == 1.0


def test_regression_targets_of_the_wrong_shape_are_refused():
    text = (ROOT / "specs" / "mcycle.yaml").read_text()
    text = text.replace("units: 1, activation: identity", "units: 2, activation: identity")
    text = text.replace("data: {builtin: mcycle, test_fraction: 0.2}", "input: {features: 1}")
    network = nnspec.build_network(nnspec.load_spec(text))
    with pytest.raises(ValueError, match=r"expected regression targets of shape \(batch, 2\)"):
        network.loss_and_gradients(np.zeros((3, 1)), np.zeros(3))


def test_adam_stays_in_float32():
    """No silent float64: the moments, the step and the parameters keep the training dtype,
    and the float32 result follows the float64 formula to float32 precision."""
    rng = np.random.default_rng(1)
    p64 = {"w": rng.normal(size=(4, 3))}
    p32 = {"w": p64["w"].astype(np.float32)}
    opt64 = Adam(AdamSpec(kind="adam", lr=0.01), p64)
    opt32 = Adam(AdamSpec(kind="adam", lr=0.01), p32)
    for _ in range(20):
        g = rng.normal(size=(4, 3))
        opt64.step(p64, {"w": g})
        opt32.step(p32, {"w": g.astype(np.float32)})
    assert p32["w"].dtype == opt32.m["w"].dtype == opt32.v["w"].dtype == np.float32
    np.testing.assert_allclose(p32["w"], p64["w"], rtol=1e-5, atol=1e-6)
