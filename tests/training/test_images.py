"""Image inputs end to end: NPZ images, input.shape, per-channel standardization, the runtime's
image checks, bit-identical ConvNet training, and AlexNet's shapes.

Small networks on the built-in 8×8 digits and a few epochs keep the file fast.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import onnx
import pytest
from conftest import ROOT
from onnx import numpy_helper

import nnspec
from nnspec import cli, pipeline
from nnspec_runtime import Model, RuntimeModelError

DIGITS = nnspec.data.core.load_builtin("digits")  # x (1797, 64) pixels 0..16, y the digit

# conv (batch, 4, 8, 8) -> pool (batch, 4, 4, 4) -> flatten 64 -> dense 10
CNN = """\
layers:
  - {kind: conv2d, name: conv, filters: 4, kernel_size: 3, padding: same, activation: relu}
  - {kind: maxpool2d, name: pool, kernel_size: 2}
  - {kind: flatten, name: flat}
  - {kind: dense, name: out, units: 10, activation: softmax}
loss: cross_entropy
"""
CNN_SHAPES = [(None, 4, 8, 8), (None, 4, 4, 4), (None, 64), (None, 10)]


def write_spec(directory, body: str, layers: str = CNN, train: str = "") -> nnspec.Spec:
    """A classification spec in ``directory/spec.yaml`` (relative data paths resolve there)."""
    text = "spec_version: 1\nname: images\ntask: classification\n" + body + layers
    text += (
        train or "train: {epochs: 3, batch_size: 32, seed: 1, optimizer: {kind: adam, lr: 0.01}}\n"
    )
    path = directory / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return nnspec.load_spec(path)


def run_onnx(network, path, x) -> dict[str, np.ndarray]:
    nnspec.export(network, path)
    return Model(path, device="cpu").run(x)


# --- NPZ images -----------------------------------------------------------------------------


def test_npz_images_without_channel_axis_or_with_one(tmp_path):
    """(N, 8, 8) is one-channel images, the same data as (N, 1, 8, 8): both validate as
    (1, 8, 8), train to bit-identical weights, and export a graph that agrees with NumPy."""
    x, y = DIGITS.x[:500], DIGITS.y[:500]
    trained = {}
    for layout, images in (("hw", x.reshape(-1, 8, 8)), ("chw", x.reshape(-1, 1, 8, 8))):
        directory = tmp_path / layout
        directory.mkdir()
        np.savez(directory / "digits.npz", x=images, y=y)
        spec = write_spec(directory, "data: {npz: digits.npz, test_fraction: 0.2}\n")
        io_, rows = nnspec.resolve(spec)
        assert io_.shape == (1, 8, 8) and io_.features == 64
        assert [r.output_shape for r in rows] == CNN_SHAPES
        result = nnspec.train(spec)
        network, history = result.network, result.history
        assert network.shape == (1, 8, 8)
        assert history.epochs_run == 3
        assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]
        held_out = DIGITS.x[1500:1600]
        got = run_onnx(network, directory / "m.onnx", held_out.reshape(-1, 1, 8, 8))
        want = network.predict(held_out)
        np.testing.assert_allclose(
            got["probabilities"], want["probabilities"], rtol=1e-4, atol=1e-5
        )
        np.testing.assert_array_equal(got["label"], want["label"])
        assert np.mean(want["label"] == DIGITS.y[1500:1600]) > 0.5  # it learned (chance 0.1)
        trained[layout] = network.arrays()
    assert list(trained["hw"]) == ["conv.weight", "conv.bias", "out.weight", "out.bias"]
    for key, value in trained["hw"].items():
        assert np.array_equal(value, trained["chw"][key]), key


def test_npz_with_three_axes_feeds_dense_layers_as_flat_rows(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2, 3))
    y = (x[:, 0, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "small.npz", x=x, y=y)
    layers = (
        "layers:\n  - {kind: dense, units: 5, activation: tanh}\n"
        "  - {kind: dense, units: 2, activation: softmax}\nloss: cross_entropy\n"
    )
    spec = write_spec(tmp_path, "data: {npz: small.npz}\n", layers, "train: {epochs: 2}\n")
    io_, rows = nnspec.resolve(spec)
    assert io_.shape == (6,) and io_.features == 6
    assert [r.output_shape for r in rows] == [(None, 5), (None, 2)]
    assert [r.params for r in rows] == [6 * 5 + 5, 5 * 2 + 2]
    network = nnspec.train(spec).network
    assert network.predict(x.reshape(60, 6))["probabilities"].shape == (60, 2)


def test_npz_with_five_axes_is_a_data_error(tmp_path, capsys):
    np.savez(tmp_path / "video.npz", x=np.zeros((10, 1, 2, 3, 4)), y=np.arange(10) % 2)
    spec = write_spec(tmp_path, "data: {npz: video.npz}\n")
    with pytest.raises(nnspec.DataError) as info:
        nnspec.resolve(spec)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "video.npz") + ": array 'x': ")
    assert "(samples, channels, height, width)" in message
    assert "got float64 of shape (10, 1, 2, 3, 4)" in message
    assert cli.main(["validate", str(tmp_path / "spec.yaml")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip() == message


# --- input: {shape: ...} ----------------------------------------------------------------------


def test_input_shape_on_builtin_digits_is_what_the_builtin_gives(tmp_path):
    """Given or inferred, the shape (1, 8, 8) builds and trains the same network bit for bit."""
    body = "data: {builtin: digits, test_fraction: 0.5}\n"
    train = "train: {epochs: 2, batch_size: 64, seed: 4}\n"
    inferred = write_spec(tmp_path, body, train=train)
    given = write_spec(tmp_path, "input: {shape: [1, 8, 8]}\n" + body, train=train)
    for spec in (inferred, given):
        io_, rows = nnspec.resolve(spec)
        assert io_.shape == (1, 8, 8)
        assert io_.feature_names[:2] == ["pixel_0_0", "pixel_0_1"]
        assert [r.output_shape for r in rows] == CNN_SHAPES
    a = nnspec.train(inferred).network
    b = nnspec.train(given).network
    for key, value in a.arrays().items():
        assert np.array_equal(value, b.arrays()[key]), key


def test_flat_input_features_with_a_conv_is_located(tmp_path):
    spec = write_spec(tmp_path, "input: {features: 64}\nclasses: [a, b, c, d, e, f, g, h, i, j]\n")
    with pytest.raises(nnspec.SpecError) as info:
        nnspec.resolve(spec)
    # line 7 is the first layer, after spec_version, name, task, input, classes and layers:
    assert str(info.value) == (
        f"{tmp_path / 'spec.yaml'}:7:5: layers[0] (conv2d): expected an image input "
        "(batch, channels, height, width), got a flat input (batch, 64); give input: "
        "{shape: [C, H, W]}"
    )


# --- per-channel standardization -------------------------------------------------------------


def test_standardization_is_per_channel(tmp_path):
    """Three channels on scales 1, 50 and 0.01 around 0, 100 and -5: one mean and deviation per
    channel (not per pixel), fitted on the training split, and the graph's Sub/Div agree."""
    rng = np.random.default_rng(7)
    means, stds = np.array([0.0, 100.0, -5.0]), np.array([1.0, 50.0, 0.01])
    x = rng.normal(size=(120, 3, 5, 5)) * stds[:, None, None] + means[:, None, None]
    y = rng.integers(0, 2, size=120)
    np.savez(tmp_path / "rgb.npz", x=x, y=y)
    layers = (
        "layers:\n  - {kind: conv2d, filters: 2, kernel_size: 3, activation: tanh}\n"
        "  - {kind: flatten}\n  - {kind: dense, units: 2, activation: softmax}\n"
        "loss: cross_entropy\n"
    )
    spec = write_spec(
        tmp_path, "data: {npz: rgb.npz, test_fraction: 0.25}\n", layers, "train: {epochs: 1}\n"
    )
    assert nnspec.resolve(spec)[0].shape == (3, 5, 5)

    network = nnspec.build_network(spec)
    network.fit_preprocess(x.reshape(120, -1))  # flat rows, as the data loaders give them
    assert network.x_mean.shape == network.x_scale.shape == (3, 1, 1)
    np.testing.assert_allclose(network.x_mean.ravel(), x.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(network.x_scale.ravel(), x.std(axis=(0, 2, 3)), rtol=1e-5)
    assert np.allclose(network.x_mean.ravel(), means, atol=0.1 * stds)  # the channels differ
    scaled = network.scale_x(x).astype(np.float64)
    np.testing.assert_allclose(scaled.mean(axis=(0, 2, 3)), 0, atol=1e-3)
    np.testing.assert_allclose(scaled.std(axis=(0, 2, 3)), 1, rtol=1e-3)
    images = network.x_mean.copy()
    network.fit_preprocess(x)  # images give the same statistics
    np.testing.assert_array_equal(network.x_mean, images)

    # Training fits them on the training split only.
    result = pipeline.train(spec)
    train_x = result.splits.train.x.reshape(-1, 3, 25)
    assert len(train_x) == 90
    np.testing.assert_allclose(result.network.x_mean.ravel(), train_x.mean(axis=(0, 2)), rtol=1e-6)
    assert not np.allclose(result.network.x_mean.ravel(), x.mean(axis=(0, 2, 3)), rtol=1e-6)

    path = tmp_path / "rgb.onnx"
    got = run_onnx(result.network, path, x)
    want = result.network.predict(x)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-4, atol=1e-5)
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    np.testing.assert_array_equal(stored["preprocess.mean"], result.network.x_mean)
    np.testing.assert_array_equal(stored["preprocess.scale"], result.network.x_scale)


# --- the runtime ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory):
    """An untrained CNN on the built-in digits (so its feature names are pixel_r_c), exported."""
    directory = tmp_path_factory.mktemp("cnn")
    spec = write_spec(directory, "data: {builtin: digits}\n")
    network = nnspec.build_network(spec)
    network.fit_preprocess(DIGITS.x)
    path = directory / "cnn.onnx"
    nnspec.export(network, path)
    return network, path


def test_runtime_takes_images_or_flat_rows(digits_cnn):
    network, path = digits_cnn
    model = Model(path, device="cpu")
    assert model.input_shape == (1, 8, 8) and model.n_features == 64
    assert model.feature_names == DIGITS.info.feature_names
    x = DIGITS.x[:9]
    images = model.run(x.reshape(9, 1, 8, 8))
    flat = model.run(x)
    for name in ("probabilities", "label"):
        np.testing.assert_array_equal(images[name], flat[name])
    want = network.predict(x)
    np.testing.assert_allclose(flat["probabilities"], want["probabilities"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(flat["label"], want["label"])


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 1, 8, 9), r"expected images of shape \(batch, 1, 8, 8\), got \(3, 1, 8, 9\)"),
        ((3, 63), r"expected 64 features per row, got 63"),
        ((3, 8, 9), r"expected images of shape \(batch, 1, 8, 8\), got \(3, 8, 9\)"),
        ((3, 2, 1, 8, 8), r"expected a 2-D array \(batch, 64\) or \(batch, 1, 8, 8\), got shape"),
    ],
)
def test_runtime_refuses_other_shapes(digits_cnn, shape, message):
    model = Model(digits_cnn[1], device="cpu")
    with pytest.raises(RuntimeModelError, match=message):
        model.run(np.zeros(shape))


def test_runtime_names_the_row_and_column_of_a_nan(digits_cnn):
    model = Model(digits_cnn[1], device="cpu")
    images = DIGITS.x[:5].reshape(5, 1, 8, 8).copy()
    images[3, 0, 2, 5] = np.nan
    nan_at = r"NaN or inf \(in float32\) at sample 3, channel 0, row 2, column 5$"
    with pytest.raises(RuntimeModelError, match=nan_at):
        model.run(images)
    rows = DIGITS.x[:5].copy()
    rows[1, 40] = np.inf  # flat rows are images too: column 40 is pixel (5, 0)
    inf_at = r"NaN or inf \(in float32\) at sample 1, channel 0, row 5, column 0$"
    with pytest.raises(RuntimeModelError, match=inf_at):
        model.run(rows)
    # 1e39 is finite in float64 but not in the model's float32.
    big = DIGITS.x[:2].copy()
    big[0, 9] = 1e39
    with pytest.raises(RuntimeModelError, match=r"at sample 0, channel 0, row 1, column 1$"):
        model.run(big)
    # One-channel images may also come without their channel axis.
    np.testing.assert_array_equal(
        model.run(DIGITS.x[:5].reshape(5, 8, 8))["probabilities"],
        model.run(DIGITS.x[:5])["probabilities"],
    )


def _predict_csv(model_path, csv_path, capsys) -> list[list[str]]:
    assert cli.main(["predict", str(model_path), str(csv_path), "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return list(csv.reader(io.StringIO(out)))


def test_predict_cli_reads_pixel_csv_with_or_without_header(digits_cnn, tmp_path, capsys):
    network, path = digits_cnn
    x = DIGITS.x[20:32]
    names = DIGITS.info.feature_names
    want = network.predict(x)
    expected_header = ["label", *(f"p_{d}" for d in range(10))]

    def write(name, header, rows):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if header:
            w.writerow(header)
        w.writerows(rows)
        (tmp_path / name).write_text(buf.getvalue())
        return tmp_path / name

    plain = [[f"{v:g}" for v in row] for row in x]
    with_header = _predict_csv(path, write("named.csv", names, plain), capsys)
    without = _predict_csv(path, write("bare.csv", None, plain), capsys)
    # Named columns are picked by name: a shuffled header with the target column still works.
    order = np.random.default_rng(3).permutation(64)
    header = ["digit", *(names[c] for c in order)]
    rows = [
        [str(t), *(row[c] for c in order)] for t, row in zip(DIGITS.y[20:32], plain, strict=True)
    ]
    reordered = _predict_csv(path, write("shuffled.csv", header, rows), capsys)

    assert with_header == without == reordered
    assert with_header[0] == expected_header and len(with_header) == 13
    labels = [int(r[0]) for r in with_header[1:]]
    np.testing.assert_array_equal(labels, want["label"])
    probs = np.array([[float(v) for v in r[1:]] for r in with_header[1:]])
    np.testing.assert_allclose(probs, want["probabilities"], rtol=1e-5, atol=1e-6)


# --- determinism ------------------------------------------------------------------------------

DETERMINISTIC = """\
layers:
  - {kind: conv2d, name: conv, filters: 4, kernel_size: 3, activation: relu}
  - {kind: batchnorm, name: bn}
  - {kind: maxpool2d, name: pool, kernel_size: 2}
  - {kind: flatten}
  - {kind: dropout, name: drop, rate: 0.3}
  - {kind: dense, name: out, units: 10, activation: softmax}
loss: cross_entropy
"""


def test_training_a_convnet_is_bit_identical_for_a_seed(tmp_path):
    body = "data: {builtin: digits, test_fraction: 0.5}\n"

    def trained(seed: int) -> dict[str, np.ndarray]:
        train = f"train: {{epochs: 2, batch_size: 64, seed: {seed}}}\n"
        network = nnspec.train(write_spec(tmp_path, body, DETERMINISTIC, train)).network
        return network.arrays()

    first, again, other = trained(5), trained(5), trained(6)
    assert list(first) == [
        "conv.weight",
        "conv.bias",
        "bn.scale",
        "bn.bias",
        "out.weight",
        "out.bias",
        "bn.running_mean",
        "bn.running_var",
    ]
    for key, value in first.items():
        assert np.array_equal(value, again[key]), key
    # The running statistics were trained (they start at 0 and 1).
    assert not np.allclose(first["bn.running_mean"], 0)
    assert not np.allclose(first["bn.running_var"], 1)
    for key in first:
        assert not np.array_equal(first[key], other[key]), key


# --- AlexNet ----------------------------------------------------------------------------------


def test_alexnet_validate_json(capsys):
    assert cli.main(["validate", str(ROOT / "specs" / "alexnet.yaml"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input"] == [None, 3, 227, 227]
    assert report["total_params"] == 60965224
    shapes = {layer["name"]: layer["output_shape"] for layer in report["layers"]}
    params = {layer["name"]: layer["params"] for layer in report["layers"]}
    assert shapes["conv1"] == [None, 96, 55, 55]
    assert shapes["pool1"] == [None, 96, 27, 27]
    assert shapes["conv2"] == [None, 256, 27, 27]
    assert shapes["pool2"] == [None, 256, 13, 13]
    assert shapes["conv5"] == [None, 256, 13, 13]
    assert shapes["pool5"] == [None, 256, 6, 6]
    assert shapes["flatten"] == [None, 9216]
    assert shapes["fc6"] == shapes["fc7"] == [None, 4096]
    assert shapes["fc8"] == [None, 1000]
    # The paper's counts; groups: 2 halves conv2, conv4 and conv5.
    assert params == {
        "conv1": 34944,
        "norm1": 0,
        "pool1": 0,
        "conv2": 307456,
        "norm2": 0,
        "pool2": 0,
        "conv3": 885120,
        "conv4": 663936,
        "conv5": 442624,
        "pool5": 0,
        "flatten": 0,
        "drop6": 0,
        "fc6": 37752832,
        "drop7": 0,
        "fc7": 16781312,
        "fc8": 4097000,
    }
    assert sum(params.values()) == report["total_params"]


def test_channels_last_images_are_not_silently_scrambled(tmp_path):
    """(samples, 8, 8, 3) data is one reshape away from nonsense as (3, 8, 8): refuse it."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rgb.npz", x=rng.normal(size=(40, 8, 8, 3)), y=rng.integers(0, 10, 40))
    data = "data: {npz: rgb.npz}\n"
    with pytest.raises(nnspec.errors.SpecError) as e:
        nnspec.resolve(write_spec(tmp_path, data + "input: {shape: [3, 8, 8]}\n"))
    assert (
        "spec.yaml:5:16: input.shape: the data holds 8×8×3 images, but input.shape is [3, 8, 8]"
        in str(e.value)
    )
    with pytest.raises(nnspec.errors.SpecError) as e:
        nnspec.resolve(write_spec(tmp_path, data))
    assert "spec.yaml:4:7: data: the images are 8×8×3, which looks channels-last" in str(e.value)
    assert "np.transpose(x, (0, 3, 1, 2))" in str(e.value)
    # Saying so is enough: 8 channels of 8×3 images, as given.
    io, rows = nnspec.resolve(write_spec(tmp_path, data + "input: {shape: [8, 8, 3]}\n"))
    assert io.shape == (8, 8, 3) and rows[0].output_shape == (None, 4, 8, 3)
    # The NCHW layout of the same images works without an input.
    x = rng.normal(size=(40, 3, 8, 8))
    np.savez(tmp_path / "rgb.npz", x=x, y=rng.integers(0, 10, 40))
    io, _ = nnspec.resolve(write_spec(tmp_path, data))
    assert io.shape == (3, 8, 8)
