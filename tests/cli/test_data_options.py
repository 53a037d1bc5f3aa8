"""nnspec train --set / --data / --target, and nnspec evaluate."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import ROOT

from nnspec.cli import main
from nnspec.data.core import load_builtin

IRIS = str(ROOT / "specs" / "iris.yaml")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture(scope="module")
def flowers(tmp_path_factory):
    d = load_builtin("iris", task="classification")
    names = np.array(["setosa", "versicolor", "virginica"])
    path = tmp_path_factory.mktemp("flowers") / "flowers.csv"
    head = "sepal_length,sepal_width,petal_length,petal_width,kind"
    rows = [",".join(map(str, r)) + f",{names[c]}" for r, c in zip(d.x, d.y, strict=True)]
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


def test_set_overrides_fields_and_is_recorded(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    code, _, _ = run(
        capsys,
        "train",
        IRIS,
        "-o",
        out,
        "-q",
        "--metrics",
        tmp_path / "m.json",
        "--set",
        "train.epochs=3",
        "--set",
        "train.optimizer.lr=0.05",
        "--set",
        "layers[0].units=7",
    )
    assert code == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["param_count"] == 4 * 7 + 7 + 7 * 3 + 3
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert meta["nnspec_spec_yaml"].startswith(f"# {IRIS}, with --set train.epochs=3")
    assert "epochs: 3" in meta["nnspec_spec_yaml"]


@pytest.mark.parametrize(
    "arg,message",
    [
        (
            "train.epochs=0",
            "--set train.epochs=0: train.epochs: expected a positive integer, got 0",
        ),
        ("train.epoch=3", "--set train.epoch=3: train.epoch: unknown key 'epoch'; did you mean"),
        (
            "layers[1].units=4",
            "--set layers[1].units=4: layers[1].units: the output layer has 4 "
            "units, but the data has 3 classes",
        ),
        ("layers[9].units=4", "--set layers[9].units=4: layers[9]: no item 9 in a list of 2"),
        ("train..x=1", "--set train..x=1: 'train..x' is not a field path"),
        ("train.epochs", "--set train.epochs: expected PATH=VALUE"),
        ("train.epochs=[1", "--set train.epochs=[1: the value is not valid YAML"),
        (
            "train.optimizer.kind=rmsprop",
            "--set train.optimizer.kind=rmsprop: "
            "train.optimizer.kind: unknown optimizer kind 'rmsprop'",
        ),
    ],
)
def test_a_bad_set_names_the_argument(tmp_path, capsys, arg, message):
    out = tmp_path / "m.onnx"
    code, _, err = run(capsys, "train", IRIS, "-o", out, "--set", arg)
    assert code == 2 and not out.exists()
    assert err.startswith(message), err


def test_data_and_target_train_on_another_file(tmp_path, capsys, flowers):
    out = tmp_path / "m.onnx"
    code, stdout, _ = run(capsys, "train", IRIS, "-o", out, "--data", flowers, "--target", "kind")
    assert code == 0 and "accuracy 0.9667" in stdout  # the built-in iris, as a file: same split
    code, _, err = run(capsys, "train", IRIS, "-o", out, "--data", tmp_path / "none.csv")
    assert code == 2 and err.startswith(f"{tmp_path / 'none.csv'}: data file not found")
    code, _, err = run(capsys, "train", IRIS, "-o", out, "--data", flowers, "--target", "nope")
    assert code == 2 and "column(s) nope not in the header" in err
    code, _, err = run(capsys, "train", IRIS, "-o", out, "--target", "kind")
    assert code == 2 and err.startswith("--target kind: applies to a csv, npz or parquet")


def test_evaluate_prints_accuracy_and_a_confusion_matrix(tmp_path, capsys, flowers):
    out = tmp_path / "m.onnx"
    assert run(capsys, "train", IRIS, "-o", out, "-q", "--data", flowers)[0] == 0
    code, stdout, _ = run(capsys, "evaluate", out, flowers, "--json", tmp_path / "e.json")
    assert code == 0
    scores = json.loads((tmp_path / "e.json").read_text())
    matrix = np.array(scores["confusion_matrix"])
    assert matrix.sum() == 150 and matrix.sum(axis=1).tolist() == [50, 50, 50]
    assert scores["accuracy"] == pytest.approx(np.trace(matrix) / 150)
    assert f"150 samples, accuracy {scores['accuracy']:.4f}" in stdout
    assert stdout.splitlines()[2].split() == [
        "true",
        "\\",
        "predicted",
        "setosa",
        "versicolor",
        "virginica",
    ]
    # The model's predictions, recomputed by the runtime: the same accuracy.
    from nnspec_runtime import Model

    d = load_builtin("iris", task="classification")
    assert (Model(out).predict(d.x).label_indices == d.y).mean() == scores["accuracy"]


def test_evaluate_regression_and_bad_data(tmp_path, capsys):
    out = tmp_path / "mc.onnx"
    spec = ROOT / "specs" / "mcycle.yaml"
    assert run(capsys, "train", spec, "-o", out, "-q", "--set", "train.epochs=100")[0] == 0
    data = ROOT / "nnspec" / "data" / "datasets" / "mcycle.csv"
    code, stdout, _ = run(capsys, "evaluate", out, data, "--json", tmp_path / "e.json")
    scores = json.loads((tmp_path / "e.json").read_text())
    assert code == 0 and scores["samples"] == 133 and scores["targets"]["accel"]["mse"] > 0
    assert f"mse {scores['mse']:.6g}" in stdout
    (tmp_path / "bad.csv").write_text("times,accel\n1,x\n")
    code, _, err = run(capsys, "evaluate", out, tmp_path / "bad.csv")
    assert code == 2 and "bad.csv:2: column 'accel': expected a number, got 'x'" in err


def test_evaluate_a_tabular_model_on_its_raw_table(tmp_path, capsys):
    spec = ROOT / "specs" / "penguins.yaml"
    out = tmp_path / "p.onnx"
    assert run(capsys, "train", spec, "-o", out, "-q", "--metrics", tmp_path / "m.json")[0] == 0
    data = ROOT / "nnspec" / "data" / "datasets" / "penguins.csv"
    code, stdout, _ = run(capsys, "evaluate", out, data, "--json", tmp_path / "e.json")
    scores = json.loads((tmp_path / "e.json").read_text())
    assert code == 0 and scores["samples"] == 344 and scores["classes"][0] == "Adelie"
    assert np.array(scores["confusion_matrix"]).sum(axis=1).tolist() == [152, 68, 124]


def test_validate_and_compile_take_the_same_overrides(tmp_path, capsys):
    code, out, _ = run(capsys, "validate", IRIS, "--set", "layers[0].units=32", "--json")
    assert code == 0 and json.loads(out)["layers"][0]["output_shape"] == [None, 32]
    code, out, _ = run(capsys, "compile", IRIS, "-o", tmp_path / "c.onnx", "--set", "train.seed=4")
    assert code == 0 and "untrained (seed 4" in out
