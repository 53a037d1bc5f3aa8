"""Plots of a model from someone else: the data its embedded spec names is read only from the
model's folder or below (or the current directory), nothing of a file that is not its data is
shown, and names that matplotlib would read as mathtext are drawn as they are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import nnspec
from nnspec.cli import main

pytest.importorskip("matplotlib")

SECRET = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI"


def spec_text(csv: str) -> str:
    return (
        "spec_version: 1\nname: two\ntask: classification\n"
        f"data: {{csv: {csv}, target: c, test_fraction: 0.25}}\n"
        "layers:\n  - {kind: dense, units: 4, activation: tanh}\n"
        "  - {kind: dense, units: 2, activation: softmax}\nloss: cross_entropy\n"
        "train: {epochs: 3, batch_size: 8, seed: 0}\n"
    )


def two_feature_model(tmp_path: Path, classes=("a", "b")) -> Path:
    rng = np.random.default_rng(0)
    rows = [f"{x:.3f},{y:.3f},{classes[int(x > 0)]}" for x, y in rng.normal(size=(40, 2))]
    (tmp_path / "d.csv").write_text("u,v,c\n" + "\n".join(rows) + "\n")
    (tmp_path / "s.yaml").write_text(spec_text("d.csv"))
    path = tmp_path / "m.onnx"
    nnspec.export(nnspec.train(nnspec.load_spec(tmp_path / "s.yaml")), path)
    return path


def with_data_path(model: Path, dest: Path, csv: str) -> Path:
    m = onnx.load(str(model))
    for p in m.metadata_props:
        if p.key == "nnspec_spec_yaml":
            p.value = p.value.replace("csv: d.csv", f"csv: {json.dumps(csv)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(dest))
    return dest


def run(capfd, *args) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert "Traceback" not in err
    return rc, out + err


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_data_outside_the_models_folder_is_never_read(capfd, tmp_path, where, monkeypatch):
    model = two_feature_model(tmp_path)
    (tmp_path / "secret.csv").write_text(f"{SECRET},x\n1,2\n")
    name = str(tmp_path / "secret.csv") if where == "absolute" else "../secret.csv"
    hostile = with_data_path(model, tmp_path / "elsewhere" / "m.onnx", name)
    monkeypatch.chdir(tmp_path / "elsewhere")
    rc, text = run(capfd, "plot", "regions", hostile, "-o", tmp_path / "r.png")
    assert rc == 2 and "outside the model's folder and the current directory" in text
    assert SECRET not in text and not (tmp_path / "r.png").exists()


def test_a_file_that_is_not_the_data_is_not_echoed(capfd, tmp_path, monkeypatch):
    model = two_feature_model(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".env").write_text(f"{SECRET},x\n1,2\n")
    hostile = with_data_path(model, tmp_path / "run" / "m.onnx", ".env")
    monkeypatch.chdir(tmp_path / "run")
    rc, text = run(capfd, "plot", "regions", hostile, "-o", tmp_path / "r.png")
    assert rc == 2 and "what the file holds is not shown" in text
    assert SECRET not in text and "AWS" not in text


def test_a_link_out_of_the_models_folder_is_not_followed(capfd, tmp_path, monkeypatch):
    model = two_feature_model(tmp_path)
    (tmp_path / "secret.csv").write_text(f"{SECRET},x\n1,2\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "d.csv").symlink_to(tmp_path / "secret.csv")
    hostile = with_data_path(model, tmp_path / "run" / "m.onnx", "d.csv")
    monkeypatch.chdir(tmp_path / "run")
    rc, text = run(capfd, "plot", "regions", hostile, "-o", tmp_path / "r.png")
    assert rc == 2 and "not found in" in text and SECRET not in text


def test_the_data_beside_the_model_is_still_drawn(capfd, tmp_path):
    model = two_feature_model(tmp_path)
    rc, text = run(capfd, "plot", "regions", model, "-o", tmp_path / "r.png")
    assert rc == 0, text
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_class_names_that_are_broken_mathtext_are_drawn_as_text(capfd, tmp_path):
    model = two_feature_model(tmp_path, classes=("$\\frac{1}{$", "$x"))
    rc, text = run(capfd, "plot", "regions", model, "-o", tmp_path / "r.svg")
    assert rc == 0, text
    assert "\\frac{1}{" in (tmp_path / "r.svg").read_text()  # as typed, not typeset


def test_a_history_row_that_is_not_an_object_is_a_clear_error(capfd, tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"history": [{"loss": 1.0}, 3]}))
    rc, text = run(capfd, "plot", "history", tmp_path / "m.json", "-o", tmp_path / "h.png")
    assert rc == 2 and "history[1] is int 3; expected an object" in text


@pytest.mark.parametrize(
    "metrics, message",
    [
        ({"history": [{"loss": 1.0}], "test": [1]}, "test is list"),
        ({"history": [{"loss": 1.0}], "best_epoch": "x"}, "best_epoch is 'x'"),
    ],
)
def test_other_malformed_metrics_are_clear_errors(capfd, tmp_path, metrics, message):
    (tmp_path / "m.json").write_text(json.dumps(metrics))
    rc, text = run(capfd, "plot", "history", tmp_path / "m.json", "-o", tmp_path / "h.png")
    assert rc == 2 and message in text


def test_huge_numbers_in_a_history_are_skipped_not_a_traceback(capfd, tmp_path):
    rows = [{"loss": 1.0, "epoch": 1}, {"loss": 10**400, "epoch": 2}, {"loss": 0.5, "epoch": 3}]
    (tmp_path / "m.json").write_text(json.dumps({"history": rows}))
    rc, text = run(capfd, "plot", "history", tmp_path / "m.json", "-o", tmp_path / "h.png")
    assert rc == 0, text
