"""``nnspec plot activations``: one block of maps per conv2d and pooling layer, non-blank
panels, the maps equal to the exported graph's own intermediate tensors, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from conftest import ROOT  # noqa: E402

from nnspec.cli.commands import main  # noqa: E402
from nnspec.onnxio.read import load_network  # noqa: E402
from nnspec.plots.activations import activation_maps, plot_activations  # noqa: E402

SMALL_CONVNET = """\
spec_version: 1
name: small-convnet
task: classification
data: {builtin: digits, test_fraction: 0.25}
layers:
  - {kind: conv2d, name: conv1, filters: 4, kernel_size: 3, activation: tanh}
  - {kind: maxpool2d, name: pool1, kernel_size: 2}
  - {kind: conv2d, name: conv2, filters: 6, kernel_size: 2, activation: tanh}
  - {kind: avgpool2d, name: pool2, kernel_size: 2}
  - {kind: flatten}
  - {kind: dense, units: 10, activation: softmax}
loss: cross_entropy
train: {optimizer: {kind: adam, lr: 0.01}, epochs: 3, batch_size: 32, seed: 0}
"""
LAYERS = [("conv1", 4, (6, 6)), ("pool1", 4, (3, 3)), ("conv2", 6, (2, 2)), ("pool2", 6, (1, 1))]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("activations")
    (tmp / "small.yaml").write_text(SMALL_CONVNET)
    assert main(["train", str(tmp / "small.yaml"), "-o", str(tmp / "small.onnx"), "-q"]) == 0
    return tmp / "small.onnx"


def _panel_pixels(fig) -> list[np.ndarray]:
    """The rendered pixels inside each image panel, in drawing order."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    height = rgba.shape[0]
    out = []
    for ax in fig.get_axes():
        if not ax.get_images() or not ax.get_visible():
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in ax.get_window_extent().extents)
        out.append(rgba[height - y1 + 2 : height - y0 - 2, x0 + 2 : x1 - 2, :3])
    return out


def test_one_block_per_conv_and_pool_layer_with_non_blank_panels(model, tmp_path):
    out = tmp_path / "act.png"
    assert main(["plot", "activations", str(model), "--index", "5", "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000
    fig = plot_activations(model, index=5)
    titles = [sub._suptitle.get_text() for sub in fig.subfigs[1].subfigs]
    assert titles == [
        f"{name} ({kind}): {c} × {h} × {w}"
        for (name, c, (h, w)), kind in zip(
            LAYERS, ["conv2d", "maxpool2d", "conv2d", "avgpool2d"], strict=True
        )
    ]
    panels = _panel_pixels(fig)
    assert len(panels) == 1 + sum(c for _, c, _ in LAYERS)  # the input, then every map
    for k, pixels in enumerate(panels[:-6]):  # pool2's maps are 1 x 1: one colour each
        assert pixels.astype(float).var() > 1.0, f"panel {k} is blank"
    assert "test split image 5 of builtin:digits" in fig._suptitle.get_text()


def test_maps_are_the_exported_graphs_intermediate_tensors(model):
    import onnx
    import onnxruntime as ort

    network, contents = load_network(model)
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 16, (1, 8, 8))
    maps = activation_maps(network, image)
    graph = contents.model
    names = {}
    for node in graph.graph.node:  # the last node of each layer gives its output
        names[node.output[0].split("/")[0]] = node.output[0]
    wanted = [names[name] for name, _, _ in maps]
    for name in wanted:
        graph.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    session = ort.InferenceSession(graph.SerializeToString())
    got = session.run(wanted, {"input": image[None].astype(np.float32)})
    for (name, _, ours), theirs in zip(maps, got, strict=True):
        np.testing.assert_allclose(ours, theirs[0], rtol=1e-4, atol=1e-5, err_msg=name)


def test_an_image_from_a_file(model, tmp_path):
    image = np.zeros((8, 8))
    image[2:6, 3:5] = 16
    np.save(tmp_path / "bar.npy", image)  # (height, width): one channel
    out = tmp_path / "bar.png"
    assert (
        main(
            [
                "plot",
                "activations",
                str(model),
                "--image",
                str(tmp_path / "bar.npy"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    fig = plot_activations(model, image=tmp_path / "bar.npy")
    assert "bar.npy; predicted" in fig._suptitle.get_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--index", "450"], "--index 450: the test split of builtin:digits has 450 images"),
        (["--image", "wrong.npy"], "has shape (3, 3) (9 values); the model takes one image"),
        (["--image", "wrong.txt"], "expected a .npy array"),
    ],
)
def test_bad_choices_are_exit_2(model, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "wrong.npy", np.zeros((3, 3)))
    (tmp_path / "wrong.txt").write_text("0")
    assert main(["plot", "activations", str(model), *args, "-o", "a.png"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


def test_a_model_without_convolutions_is_exit_2(tmp_path, capsys):
    assert (
        main(["compile", str(ROOT / "specs" / "iris.yaml"), "-o", str(tmp_path / "iris.onnx")]) == 0
    )
    assert (
        main(["plot", "activations", str(tmp_path / "iris.onnx"), "-o", str(tmp_path / "a.png")])
        == 2
    )
    assert "has no conv2d or pooling layer" in capsys.readouterr().err
