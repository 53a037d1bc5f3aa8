"""``nnspec init``: a commented starter spec that validates (and trains) as written."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import yaml
from conftest import ROOT

from nnspec import cli, load_spec
from nnspec.cli.starter import schema_reference

HEADER = "# yaml-language-server: $schema="


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def schema_of(spec: Path) -> Path:
    """The schema file that the spec's first line points at, wherever it is."""
    first = spec.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(HEADER), first
    ref = first[len(HEADER) :]
    if ref.startswith("file://"):
        return Path(unquote(urlparse(ref).path))
    return (spec.parent / ref).resolve()


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_starter_validates_and_points_at_the_schema(tmp_path, capsys, task):
    spec = tmp_path / "my model.yaml"
    code, out, _ = run(capsys, "init", spec, "--task", task)
    assert code == 0 and f"wrote {spec}: {task}" in out
    assert run(capsys, "validate", spec)[0] == 0
    loaded = load_spec(spec)
    assert (loaded.name, loaded.task) == ("my-model", task)
    assert loaded.data.builtin == ("iris" if task == "classification" else "mcycle")
    schema = schema_of(spec)
    assert schema.is_file()
    assert schema.read_text() == (ROOT / "nnspec" / "schema.json").read_text()
    # Commented: every top-level key of the starter says what it is for.
    text = spec.read_text()
    for line in text.splitlines():
        if line and not line.startswith((" ", "#", "train:")):
            assert "  # " in line, f"uncommented line: {line!r}"


def test_default_starter_trains(tmp_path, capsys):
    spec = tmp_path / "starter.yaml"
    assert run(capsys, "init", spec)[0] == 0
    code, out, _ = run(
        capsys, "train", spec, "-o", tmp_path / "m.onnx", "--metrics", tmp_path / "m.json"
    )
    assert code == 0, out
    assert json.loads((tmp_path / "m.json").read_text())["test"]["accuracy"] >= 0.9


def test_schema_reference_inside_and_outside_the_source_tree(tmp_path):
    assert schema_reference(ROOT / "specs" / "new.yaml") == "../nnspec/schema.json"
    assert schema_reference(ROOT / "examples" / "sub" / "new.yaml") == "../../nnspec/schema.json"
    outside = schema_reference(tmp_path / "new.yaml")
    assert outside.startswith("file:///") and outside.endswith("/nnspec/schema.json")


def test_from_csv_reads_sizes_classes_and_task(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = ["cat", "dog", "yes"]  # 'yes' must be quoted in YAML, or it reads as true
    rows = [[*np.round(rng.normal(size=5), 3), labels[i % 3]] for i in range(30)]
    data = write_csv(tmp_path / "pets.csv", ["a", "b", "c", "d", "e", "animal"], rows)
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "pets.yaml"
    code, out, _ = run(capsys, "init", spec, "--from-data", data)
    assert code == 0, out
    assert "task guessed from 'animal'" in out
    assert run(capsys, "validate", spec)[0] == 0
    loaded = load_spec(spec)
    assert loaded.task == "classification"
    assert (loaded.data.csv, loaded.data.target) == ("../pets.csv", "animal")
    assert loaded.input.features == 5
    assert loaded.classes == ["cat", "dog", "yes"]
    assert loaded.layers[-1].units == 3 and loaded.layers[-1].activation == "softmax"
    assert loaded.loss == "cross_entropy"


def test_from_csv_regression_and_target_column(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows = [
        [round(float(x), 4), i % 4, round(float(x) * 2.5, 4)]
        for i, x in enumerate(rng.normal(size=40))
    ]
    data = write_csv(tmp_path / "d.csv", ["x", "group", "y"], rows)
    spec = tmp_path / "reg.yaml"
    assert run(capsys, "init", spec, "--from-data", data)[0] == 0  # last column: y, fractions
    loaded = load_spec(spec)
    assert (loaded.task, loaded.data.target, loaded.input.features) == ("regression", "y", 2)
    assert loaded.layers[-1].units == 1 and loaded.loss == "mse"
    assert loaded.preprocess.standardize_target
    # A column of a few integers reads as classes, unless --task says otherwise.
    spec2 = tmp_path / "group.yaml"
    assert run(capsys, "init", spec2, "--from-data", data, "--target", "group")[0] == 0
    assert load_spec(spec2).task == "classification" and load_spec(spec2).layers[-1].units == 4
    spec3 = tmp_path / "group-reg.yaml"
    args = ("init", spec3, "--from-data", data, "--target", "group", "--task", "regression")
    assert run(capsys, *args)[0] == 0
    assert load_spec(spec3).task == "regression"
    for s in (spec, spec2, spec3):
        assert run(capsys, "validate", s)[0] == 0


def test_from_npz_images_gets_a_convnet(tmp_path, capsys):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "img.npz", x=rng.random((24, 3, 10, 10)), y=np.arange(24) % 2)
    spec = tmp_path / "img.yaml"
    assert run(capsys, "init", spec, "--from-data", tmp_path / "img.npz")[0] == 0
    loaded = load_spec(spec)
    assert loaded.input.shape == [3, 10, 10]
    assert [layer.kind for layer in loaded.layers][:2] == ["conv2d", "maxpool2d"]
    assert loaded.classes == ["0", "1"] and loaded.layers[-1].units == 2
    assert run(capsys, "validate", spec)[0] == 0


def test_from_npz_with_several_targets_is_regression(tmp_path, capsys):
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "m.npz", x=rng.random((30, 4)), y=rng.random((30, 3)))
    spec = tmp_path / "m.yaml"
    assert run(capsys, "init", spec, "--from-data", tmp_path / "m.npz")[0] == 0
    loaded = load_spec(spec)
    assert (loaded.task, loaded.layers[-1].units) == ("regression", 3)
    assert run(capsys, "validate", spec)[0] == 0


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    spec = tmp_path / "mine.yaml"
    spec.write_text("precious: true\n")
    code, out, err = run(capsys, "init", spec)
    assert code == 2 and out == ""
    assert (
        err.strip()
        == f"{spec}: already exists; expected a new file (nnspec init --force overwrites it)"
    )
    assert spec.read_text() == "precious: true\n"
    assert run(capsys, "init", spec, "--force")[0] == 0
    assert spec.read_text().startswith(HEADER)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-data", "missing.csv"], "missing.csv: data file not found"),
        (
            ["--from-data", "d.csv", "--target", "nope"],
            "d.csv:1: column(s) nope not in the header; the columns are: x, y",
        ),
        (["--from-data", "one.csv", "--task", "classification"], "expected at least 2 classes"),
        (["--from-data", "d.txt"], "expected a .csv file (with a header row) or an .npz"),
        (["--target", "y"], "--target: expected together with --from-data FILE"),
    ],
)
def test_unusable_data_is_a_one_line_error(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "d.csv", ["x", "y"], [[1, 2], [3, 4]])
    write_csv(tmp_path / "one.csv", ["x", "y"], [[1, "a"], [3, "a"]])
    (tmp_path / "d.txt").write_text("x\n")
    code, out, err = run(capsys, "init", "new.yaml", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "new.yaml").exists()


def test_starter_yaml_is_plain_yaml(tmp_path, capsys):
    """The comments are comments: the document is the same as without them."""
    spec = tmp_path / "s.yaml"
    assert run(capsys, "init", spec)[0] == 0
    text = spec.read_text()
    stripped = "\n".join(
        line.split("  #")[0] for line in text.splitlines() if not line.lstrip().startswith("#")
    )
    assert yaml.safe_load(text) == yaml.safe_load(stripped)
