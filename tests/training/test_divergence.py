"""Divergence stops training at the bad batch with the last good weights; clipping prevents it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import nnspec
from nnspec import cli, pipeline
from nnspec.errors import SpecError
from nnspec.training import checkpoint as ckpt
from nnspec.training import loop
from nnspec.training.loop import TrainingError, clip_grad_norm, grad_norm

# MCycle with plain SGD at lr 2: the squared error blows up to inf in epoch 4 (cosine schedule,
# lr 1.9995 there). With clip_grad_norm: 1.0 the same spec trains to R² ≈ 0.69.
MCYCLE = (
    (ROOT / "specs" / "mcycle.yaml")
    .read_text()
    .replace("{kind: adam, lr: 0.05}", "{kind: sgd, lr: 2.0}")
    .replace("epochs: 2000", "epochs: 300")
)
# The same with batchnorm (running statistics that a forward pass changes) and dropout (an RNG
# that a forward pass advances): the loss becomes NaN in epoch 1, batch 5.
MCYCLE_BN = MCYCLE.replace(
    "  - {kind: dense, units: 10, activation: logistic}\n",
    "  - {kind: dense, units: 10, activation: logistic}\n"
    "  - {kind: batchnorm}\n"
    "  - {kind: dropout, rate: 0.1}\n",
)


def _clipped(text: str, bound: float) -> str:
    return text.replace("  batch_size: 16\n", f"  batch_size: 16\n  clip_grad_norm: {bound}\n")


def _diverge(text: str, **kw):
    """Train until divergence: the error, the network, and after each good step its arrays
    (and in ``rng_states`` its dropout RNG states)."""
    after: list[dict[str, np.ndarray]] = []
    rng_states.clear()
    networks = []
    real_fit = loop.fit

    def fit(network, *args, **kwargs):
        networks.append(network)
        return real_fit(network, *args, **kwargs)

    def on_batch(epoch, batch):
        arrays = {k: v.copy() for k, v in networks[0].arrays().items()}
        after.append(arrays)
        rng_states.append(_rng_states(networks[0]))

    loop.fit = fit
    try:
        with pytest.raises(TrainingError) as info:
            pipeline.train(nnspec.load_spec(text), on_batch=on_batch, **kw)
    finally:
        loop.fit = real_fit
    return info.value, networks[0], after


rng_states: list[dict] = []


def _rng_states(network) -> dict:
    return {la.name: la.rng.bit_generator.state for la in network.layers if hasattr(la, "rng")}


def _assert_arrays_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_divergence_names_epoch_and_batch_and_keeps_last_good_weights():
    error, network, after = _diverge(MCYCLE)
    message = str(error)
    assert message.startswith("the loss became inf at epoch 4, batch 3 (of 7): training diverged")
    for advice in (
        "a smaller train.optimizer.lr (now 1.9995)",
        "train.clip_grad_norm: 1.0",
        "another initializer",
    ):
        assert advice in message
    assert len(after) == 3 * 7 + 2
    _assert_arrays_equal(network.arrays(), after[-1])


def test_batchnorm_and_dropout_state_of_the_bad_batch_is_undone(tmp_path):
    error, network, after = _diverge(MCYCLE_BN, checkpoint_dir=tmp_path)
    assert "the loss became nan at epoch 1, batch 5 (of 7)" in str(error)
    assert f"a checkpoint of that state was written to {tmp_path}" in str(error)
    # The running statistics are those after batch 4, not the NaNs of batch 5's forward pass.
    assert np.isfinite(network.arrays()["batchnorm_1.running_mean"]).all()
    _assert_arrays_equal(network.arrays(), after[-1])
    # The dropout RNG is back where the last good step left it: the bad batch's mask is redrawn.
    assert _rng_states(network) == rng_states[-1] != {}
    loaded = ckpt.read_checkpoint(tmp_path)
    assert loaded.meta.layer_rngs == rng_states[-1]
    assert loaded.meta.reason == "diverged"
    assert (loaded.meta.position.epoch, loaded.meta.position.batch) == (0, 4)
    _assert_arrays_equal({k[4:]: v for k, v in loaded.arrays.items() if k[:4] == "net/"}, after[-1])
    # Resuming replays the bad batch exactly: same masks (dropout RNG rewound), same error.
    again, _, _ = _diverge(MCYCLE_BN, resume=loaded, checkpoint_dir=tmp_path)
    assert str(again) == str(error)


def test_non_finite_gradient_with_finite_loss_is_caught(monkeypatch):
    from nnspec.nn.network import Network

    calls = []
    real = Network.backprop

    def backprop(self, xs, t, lowest=None):
        loss, out = real(self, xs, t, lowest)
        calls.append(1)
        if len(calls) == 10:  # epoch 2, batch 3
            self.layers[1].grads["weight"][0, 0] = np.nan
        return loss, out

    monkeypatch.setattr(Network, "backprop", backprop)
    error, network, after = _diverge(_clipped(MCYCLE, 1.0))
    assert str(error).startswith(
        "the gradient of dense_1.weight became non-finite at epoch 2, batch 3 (of 7)"
    )
    assert "a train.clip_grad_norm below 1" in str(error)
    assert len(after) == 9
    _assert_arrays_equal(network.arrays(), after[-1])


def test_clipping_lets_the_diverging_spec_train():
    with pytest.raises(TrainingError):
        pipeline.train(nnspec.load_spec(MCYCLE))
    result = pipeline.train(nnspec.load_spec(_clipped(MCYCLE, 1.0)))
    assert result.history.epochs_run == 300
    assert result.metrics["r2"] > 0.6


def test_clip_scales_to_the_bound_in_place_keeping_float32():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(4, 10)).astype(np.float32), rng.normal(size=10).astype(np.float32)]
    before = [g.copy() for g in grads]
    norm = grad_norm(grads)
    assert norm == pytest.approx(np.sqrt(sum(float((g.astype(float) ** 2).sum()) for g in grads)))
    assert clip_grad_norm(grads, 2.0) == norm > 2.0
    assert all(g.dtype == np.float32 for g in grads)
    assert grad_norm(grads) == pytest.approx(2.0, rel=1e-6)
    for g, b in zip(grads, before, strict=True):  # the direction is kept
        np.testing.assert_allclose(g, b * (2.0 / (norm + 1e-6)), rtol=1e-6)
    # Within the bound: untouched, to the bit.
    small = [g.copy() for g in grads]
    clip_grad_norm(small, 5.0)
    assert all(s.tobytes() == g.tobytes() for s, g in zip(small, grads, strict=True))


def test_norm_past_float32_range_is_still_clipped():
    grads = [np.full(4, 3e19, np.float32)]  # squares overflow float32
    assert grad_norm(grads) == pytest.approx(6e19, rel=1e-6)
    clip_grad_norm(grads, 1.0)
    np.testing.assert_allclose(grads[0], 0.5, rtol=1e-6)


def test_clipping_changes_training_only_through_the_bound():
    # A bound far above every gradient norm leaves training bit-identical.
    stable = MCYCLE.replace("lr: 2.0", "lr: 0.5")
    plain = pipeline.train(nnspec.load_spec(stable))
    loose = pipeline.train(nnspec.load_spec(_clipped(stable, 1e30)))
    _assert_arrays_equal(plain.network.arrays(), loose.network.arrays())
    tight = pipeline.train(nnspec.load_spec(_clipped(stable, 0.1)))
    assert not np.array_equal(
        plain.network.arrays()["dense_0.weight"], tight.network.arrays()["dense_0.weight"]
    )


@pytest.mark.parametrize(
    "line, expected",
    [
        (
            "clip_grad_norm: 0",
            "<spec>:17:19: train.clip_grad_norm: expected a positive number, got 0",
        ),
        ("clip_grad_norm: -1", "<spec>:17:19: train.clip_grad_norm: expected a positive number"),
        (
            "checkpoint_every: 0",
            "<spec>:17:21: train.checkpoint_every: expected a positive integer",
        ),
    ],
)
def test_bounds_must_be_positive(line, expected):
    with pytest.raises(SpecError) as info:
        nnspec.load_spec(MCYCLE.replace("  batch_size: 16\n", f"  batch_size: 16\n  {line}\n"))
    assert expected in str(info.value)


def test_cli_divergence_is_exit_2_without_a_model(tmp_path, capsys):
    spec = tmp_path / "m.yaml"
    spec.write_text(MCYCLE)
    model, directory = tmp_path / "m.onnx", tmp_path / "ck"
    code = cli.main(["train", str(spec), "-o", str(model), "--checkpoint", str(directory)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert "at epoch 4, batch 3 (of 7): training diverged" in err
    assert f"a checkpoint of that state was written to {directory}" in err
    assert not model.exists()
    assert ckpt.read_checkpoint(directory).meta.reason == "diverged"
