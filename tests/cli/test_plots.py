"""``nnspec plot`` and ``nnspec train --plots``: every plot rendered headless (Agg) from the
shipped specs (with fewer epochs, to stay fast), then read back and checked: its size in
pixels, that it is not blank, its number of panels; SVG output, errors, and the fit overlay
adding up to the model's prediction."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

pytest.importorskip("matplotlib")

import matplotlib.image as mpimg  # noqa: E402

from nnspec import cli  # noqa: E402
from nnspec.onnxio.read import load_network  # noqa: E402
from nnspec.plots.common import PlotError, save_figure  # noqa: E402
from nnspec.plots.filters import plot_filters  # noqa: E402
from nnspec.plots.fit import fit_components, plot_fit  # noqa: E402
from nnspec.plots.history import plot_history  # noqa: E402
from nnspec.plots.regions import plot_regions  # noqa: E402

SPECS = ROOT / "specs"


def short_spec(tmp, name: str, old: str, new: str):
    """A copy of a shipped spec with ``old`` replaced (fewer epochs), written into ``tmp``."""
    text = (SPECS / f"{name}.yaml").read_text()
    assert old in text
    path = tmp / f"{name}.yaml"
    path.write_text(text.replace(old, new))
    return path


def run(*args) -> int:
    return cli.main([str(a) for a in args])


def panels(fig) -> list:
    """The figure's plot panels, without colour bars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def check_image(path, width: int, height: int) -> None:
    """The PNG exists, has this size, and shows a picture, not a blank canvas."""
    image = mpimg.imread(path)
    assert image.shape[:2] == (height, width)
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.02
    assert len(np.unique((rgb * 255).round().astype(np.uint8), axis=0)) >= 20


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """mcycle, iris2d and iris trained briefly through the CLI, with metrics and --plots; a
    LeNet compiled (untrained) for its filters."""
    tmp = tmp_path_factory.mktemp("plots")
    specs = {
        "mcycle": short_spec(tmp, "mcycle", "epochs: 2000", "epochs: 300"),
        "iris2d": short_spec(tmp, "iris2d", "epochs: 300", "epochs: 100"),
        "iris": short_spec(tmp, "iris", "epochs: 200", "epochs: 60"),
    }
    for name, spec in specs.items():
        model, metrics, plots = tmp / f"{name}.onnx", tmp / f"{name}.json", tmp / f"{name}-plots"
        assert run("train", spec, "-o", model, "--metrics", metrics, "--plots", plots, "-q") == 0
    assert run("compile", SPECS / "lenet.yaml", "-o", tmp / "lenet.onnx") == 0
    return tmp


# -- history --------------------------------------------------------------------------------


def test_history_classification(trained, capsys):
    out = trained / "iris-history.png"
    assert run("plot", "history", trained / "iris.json", "-o", out) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    check_image(out, 1000, 400)
    fig = plot_history(trained / "iris.json")
    loss, metric = panels(fig)
    assert (loss.get_ylabel(), metric.get_ylabel()) == ("loss", "accuracy")
    labels = [line.get_label() for line in loss.get_lines()]
    assert {"training", "validation"} <= set(labels)
    best = json.loads((trained / "iris.json").read_text())["best_epoch"]
    assert any(f"epoch {best}" in label for label in labels)  # the best epoch is marked


def test_history_regression(trained):
    fig = plot_history(trained / "mcycle.json")
    assert [ax.get_ylabel() for ax in panels(fig)] == ["loss", "R²"]
    assert "no validation split" in fig.get_suptitle()


def test_history_of_a_file_that_is_not_metrics(trained, capsys):
    assert run("plot", "history", trained / "iris.onnx", "-o", trained / "h.png") == 2
    err = capsys.readouterr().err
    assert "expected the metrics JSON that nnspec train --metrics writes" in err
    assert "Traceback" not in err and not (trained / "h.png").exists()


# -- fit ------------------------------------------------------------------------------------


def test_fit_plot(trained):
    out = trained / "fit.png"
    assert run("plot", "fit", trained / "mcycle.onnx", "-o", out, "--dpi", 80) == 0
    check_image(out, 720, 440)  # 9 x 5.5 inches at 80 dpi
    fig = plot_fit(trained / "mcycle.onnx")
    (ax,) = panels(fig)
    assert ax.get_xlabel() == "times (ms)" and ax.get_ylabel() == "accel (g)"
    labels = [line.get_label() for line in ax.get_lines()]
    assert sum(label.startswith("unit ") for label in labels) == 10  # mcycle is 1-10-1
    assert "prediction (the sum)" in labels


def test_fit_units_add_up_to_the_prediction(trained):
    from nnspec_runtime import Model

    model = trained / "mcycle.onnx"
    network, _ = load_network(model)
    x = np.linspace(-5, 65, 300).reshape(-1, 1)
    parts = fit_components(network, x)
    assert parts.units.shape == (300, 10, 1) and parts.additive
    # Exactly the NumPy network (float64 from the stored float32 weights) ...
    np.testing.assert_allclose(parts.total, network.forward(x), rtol=1e-12, atol=1e-9)
    # ... and the deployed model within float32 rounding, in the target's units (g).
    prediction = Model(model, device="cpu").run(x)["prediction"]
    scale = np.abs(prediction).max()
    np.testing.assert_allclose(parts.total, prediction, rtol=1e-5, atol=1e-6 * scale)


def test_fit_with_data_from_a_csv(trained, tmp_path):
    from nnspec.data.core import load_builtin

    d = load_builtin("mcycle")
    csv = tmp_path / "crash.csv"
    rows = [f"{t},{a}" for t, a in zip(d.x[:40, 0], d.y[:40, 0], strict=True)]
    csv.write_text("times,accel\n" + "\n".join(rows) + "\n")
    fig = plot_fit(trained / "mcycle.onnx", csv)
    (ax,) = panels(fig)
    (points,) = ax.collections  # one set of points, not split into training and test
    assert len(points.get_offsets()) == 40 and points.get_label() == "data"


# -- regions --------------------------------------------------------------------------------


def test_regions_two_features(trained):
    out = trained / "regions.png"
    assert run("plot", "regions", trained / "iris2d.onnx", "-o", out) == 0
    check_image(out, 750, 600)
    (ax,) = panels(plot_regions(trained / "iris2d.onnx", resolution=60))
    assert ax.get_xlabel() == "petal_length (cm)" and ax.get_ylabel() == "petal_width (cm)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:3] == ["setosa", "versicolor", "virginica"]
    image = ax.get_images()[0].get_array()
    assert image.shape[:2] == (60, 60)
    # Three classes predicted somewhere on the grid: three distinct hues.
    assert len(np.unique(np.argmax(np.asarray(image), axis=-1))) == 3
    points = sum(len(c.get_offsets()) for c in ax.collections if c.get_offsets().shape[1] == 2)
    assert points >= 150  # every iris sample drawn (contour sets add no offsets)


def test_regions_more_features_need_two_named(trained, capsys):
    model = trained / "iris.onnx"
    assert run("plot", "regions", model, "-o", trained / "r.png") == 2
    assert "--features A B" in capsys.readouterr().err
    fig = plot_regions(
        model, features=["petal_length", "sepal_width"], fix={"petal_width": 1.2}, resolution=40
    )
    (ax,) = panels(fig)
    title = ax.get_title()
    assert "petal_width = 1.2" in title and "sepal_length = 5.84 (data mean)" in title
    assert ax.get_xlabel() == "petal_length (cm)"
    for bad, message in (
        (["--features", "petal_length", "stamen"], "unknown feature stamen"),
        (["--features", "petal_length", "sepal_width", "--fix", "x"], "expected NAME=VALUE"),
        (["--features", "petal_length", "sepal_width", "--fix", "petal_length=1"], "plotted"),
    ):
        assert run("plot", "regions", model, "-o", trained / "r.png", *bad) == 2
        assert message in capsys.readouterr().err


def test_regions_with_data_from_an_npz_of_class_indices(trained, tmp_path):
    from nnspec.data.core import load_builtin

    d = load_builtin("iris", ["petal_length", "petal_width"])
    np.savez(tmp_path / "d.npz", x=d.x[::5], y=d.y[::5])  # y: 0, 1, 2 for the named classes
    (ax,) = panels(plot_regions(trained / "iris2d.onnx", tmp_path / "d.npz", resolution=30))
    (points,) = [c for c in ax.collections if len(c.get_offsets()) == 30]
    assert len(np.unique(points.get_facecolors()[:, :3], axis=0)) == 3  # coloured by class


# -- filters --------------------------------------------------------------------------------


def test_filters_lenet(trained):
    out = trained / "filters.png"
    assert run("plot", "filters", trained / "lenet.onnx", "-o", out) == 0
    fig = plot_filters(trained / "lenet.onnx")
    width, height = (fig.get_size_inches() * fig.dpi).round().astype(int)
    check_image(out, width, height)
    assert len(panels(fig)) == 6  # conv1: 6 filters of 1x5x5
    assert all(ax.get_images()[0].get_array().shape == (5, 5) for ax in panels(fig))
    fig = plot_filters(trained / "lenet.onnx", layer="conv2")
    assert len(panels(fig)) == 16  # 16 filters, their 6 channels side by side in each


def test_filters_rgb(tmp_path):
    spec = tmp_path / "rgb.yaml"
    spec.write_text(
        "spec_version: 1\nname: rgb\ntask: classification\n"
        "input: {shape: [3, 12, 12]}\nclasses: [a, b]\n"
        "layers:\n  - {kind: conv2d, filters: 5, kernel_size: 3}\n  - {kind: flatten}\n"
        "  - {kind: dense, units: 2, activation: softmax}\nloss: cross_entropy\n"
    )
    assert run("compile", spec, "-o", tmp_path / "rgb.onnx") == 0
    fig = plot_filters(tmp_path / "rgb.onnx")
    assert len(panels(fig)) == 5 and len(fig.axes) == 5  # colour images: no colour bar
    assert panels(fig)[0].get_images()[0].get_array().shape == (3, 3, 3)


# -- output formats, errors, --plots ---------------------------------------------------------


def test_svg(trained):
    out = trained / "regions.svg"
    assert run("plot", "regions", trained / "iris2d.onnx", "-o", out) == 0
    text = out.read_text()
    assert text.startswith("<?xml") and "<svg" in text and "petal_length" in text


def test_wrong_suffix_is_exit_2(trained, capsys):
    assert run("plot", "fit", trained / "mcycle.onnx", "-o", trained / "fit.jpg") == 2
    err = capsys.readouterr().err
    assert "expected a .png or .svg file to write, got '.jpg'" in err
    assert not (trained / "fit.jpg").exists()
    with pytest.raises(PlotError):
        save_figure(plot_history(trained / "iris.json"), trained / "history.pdf")


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "iris2d.onnx"], "plot fit is for regression models"),
        (["regions", "mcycle.onnx"], "plot regions is for classifiers"),
        (["filters", "iris.onnx"], "has no conv2d layer"),
        (["filters", "lenet.onnx", "--layer", "fc1"], "not a conv2d layer"),
        (["fit", "missing.onnx"], "no such model file"),
    ],
)
def test_plots_that_do_not_apply_are_exit_2(trained, capsys, args, message):
    kind, model, *rest = args
    assert run("plot", kind, trained / model, "-o", trained / "x.png", *rest) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_matplotlib(trained, tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises
    assert run("plot", "history", trained / "iris.json", "-o", tmp_path / "h.png") == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        'plots need matplotlib, which is not installed; install it with: pip install "nnspec[plot]"'
    )
    # nnspec train --plots says so before training, and writes nothing.
    spec = SPECS / "iris2d.yaml"
    assert run("train", spec, "-o", tmp_path / "m.onnx", "--plots", tmp_path / "p", "-q") == 2
    assert 'pip install "nnspec[plot]"' in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_train_plots_writes_what_applies(trained, tmp_path, capsys):
    def written(directory):
        return sorted(p.name for p in directory.iterdir())

    assert written(trained / "mcycle-plots") == ["fit.png", "history.png"]
    assert written(trained / "iris2d-plots") == ["history.png", "regions.png"]
    # iris has four features: regions needs two named, so --plots leaves it out.
    assert written(trained / "iris-plots") == ["history.png"]
    check_image(trained / "mcycle-plots" / "fit.png", 900, 550)
    check_image(trained / "iris2d-plots" / "history.png", 1000, 400)
    # A ConvNet gets its filters and activation maps; one epoch of LeNet is enough.
    spec = short_spec(tmp_path, "lenet", "epochs: 15", "epochs: 1")
    assert run("train", spec, "-o", tmp_path / "lenet.onnx", "--plots", tmp_path / "p") == 0
    out = capsys.readouterr().out
    assert "skipped plot regions: the model takes images" in out
    assert written(tmp_path / "p") == ["activations.png", "filters.png", "history.png"]


def test_cli_starts_without_matplotlib():
    # The parser knows the plot commands, but importing the CLI loads no plotting library.
    code = (
        "import sys; from nnspec import cli; cli.parser(); "
        "print(sorted(m for m in ('matplotlib', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "matplotlib" not in out.stdout
