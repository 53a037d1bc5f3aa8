"""Malformed specs: each realistic mistake gives exit code 2 and one located line, no traceback.

Every case is run through ``nnspec validate`` in-process and checked for the file name, the
1-based ``line:col`` of the offending YAML node (counted by hand from the text below), the YAML
path where there is one, and the gist of the message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from nnspec.cli import main

# A valid spec; the cases below change, drop or append lines. Columns of the two layer lines:
#   "  - {kind: dense, units: 10, activation: relu}"
#    col 5 '{', 6 'kind', 12 its value, 19 'units', 26 its value, 30 'activation', 42 its value.
BASE = (
    "spec_version: 1",  # 1
    "name: iris-mlp",  # 2
    "task: classification",  # 3
    "data: {builtin: iris}",  # 4
    "layers:",  # 5
    "  - {kind: dense, units: 10, activation: relu}",  # 6
    "  - {kind: dense, units: 3, activation: softmax}",  # 7
    "loss: cross_entropy",  # 8
)

# The same shape for a regression dataset.
REGRESSION = (
    "spec_version: 1",  # 1
    "name: mcycle-mlp",  # 2
    "task: regression",  # 3
    "data: {builtin: mcycle}",  # 4
    "layers:",  # 5
    "  - {kind: dense, units: 10, activation: logistic}",  # 6
    "  - {kind: dense, units: 1, activation: identity}",  # 7
    "loss: mse",  # 8
)


def spec(
    edits: dict[int, str] | None = None,
    drop: tuple[int, ...] = (),
    append: tuple[str, ...] = (),
    base: tuple[str, ...] = BASE,
) -> str:
    """``base`` with lines replaced (by 1-based number), dropped, and appended (from line 9)."""
    edits = edits or {}
    lines = [edits.get(n, text) for n, text in enumerate(base, start=1) if n not in drop]
    return "\n".join([*lines, *append]) + "\n"


@dataclass(frozen=True)
class Case:
    text: str | bytes
    line: int
    col: int
    path: str | None  # the YAML path printed after the location, if any
    message: str  # a substring of the message


CASES: dict[str, Case] = {
    # --- keys and kinds -------------------------------------------------------------------------
    "unknown_top_level_key": Case(
        spec(append=("epochs: 100",)),
        9,
        1,
        "epochs",
        "unknown key 'epochs' here; did you mean 'train.epochs'? Expected one of: classes, ",
    ),
    "optimizer_key_directly_under_train": Case(
        spec(append=("train:", "  lr: 0.1")),
        10,
        3,
        "train.lr",
        "unknown key 'lr' here; did you mean 'train.optimizer.lr'?",
    ),
    "misspelled_layer_key": Case(
        spec({7: "  - {kind: dense, unit: 3, activation: softmax}"}),
        7,
        19,
        "layers[1].unit",
        "unknown key 'unit'; did you mean 'units'?",
    ),
    "misspelled_layer_kind": Case(
        spec({7: "  - {kind: dence, units: 3, activation: softmax}"}),
        7,
        12,
        "layers[1].kind",
        "unknown layer kind 'dence'; did you mean 'dense'?",
    ),
    "layer_as_string": Case(
        spec({6: "  - dense"}), 6, 5, "layers[0]", "expected a mapping, got the string 'dense'"
    ),
    "misspelled_task": Case(
        spec({3: "task: clasification"}), 3, 7, "task", "did you mean 'classification'?"
    ),
    "name_with_space": Case(spec({2: "name: iris mlp"}), 2, 7, "name", "got the string 'iris mlp'"),
    "spec_version_2": Case(
        spec({1: "spec_version: 2"}), 1, 15, "spec_version", "expected 1, got 2"
    ),
    # --- units --------------------------------------------------------------------------------
    "negative_units": Case(
        spec({6: "  - {kind: dense, units: -3, activation: relu}"}),
        6,
        26,
        "layers[0].units",
        "expected a positive integer, got -3",
    ),
    "zero_units": Case(
        spec({7: "  - {kind: dense, units: 0, activation: softmax}"}),
        7,
        26,
        "layers[1].units",
        "expected a positive integer, got 0",
    ),
    "units_string": Case(
        spec({6: '  - {kind: dense, units: "10", activation: relu}'}),
        6,
        26,
        "layers[0].units",
        "expected an integer, got the string '10'",
    ),
    "units_float": Case(
        spec({6: "  - {kind: dense, units: 10.5, activation: relu}"}),
        6,
        26,
        "layers[0].units",
        "expected an integer, got 10.5",
    ),
    "units_bool": Case(
        spec({6: "  - {kind: dense, units: true, activation: relu}"}),
        6,
        26,
        "layers[0].units",
        "expected an integer, got true",
    ),
    "missing_units": Case(
        spec({6: "  - {kind: dense, activation: relu}"}),
        6,
        5,
        "layers[0].units",
        "missing required key 'units'",
    ),
    # --- required keys ------------------------------------------------------------------------
    "missing_loss": Case(spec(drop=(8,)), 1, 1, "loss", "missing required key 'loss'"),
    "missing_layers": Case(spec(drop=(5, 6, 7)), 1, 1, "layers", "missing required key 'layers'"),
    "empty_layers": Case(
        spec({5: "layers: []"}, drop=(6, 7)),
        5,
        9,
        "layers",
        "expected at least 1 item(s), got 0",
    ),
    "null_layers": Case(
        spec({5: "layers:"}, drop=(6, 7)), 5, 8, "layers", "expected a list, got nothing (null)"
    ),
    "no_input_no_data": Case(
        spec(drop=(4,)), 1, 1, None, "the input size is unknown: give input: {features: N}"
    ),
    # --- activations and losses ---------------------------------------------------------------
    "softmax_in_hidden_layer": Case(
        spec({6: "  - {kind: dense, units: 10, activation: softmax}"}),
        6,
        42,
        "layers[0].activation",
        "softmax is only allowed on the last layer (layers[1])",
    ),
    "activation_sigmoid": Case(
        spec({6: "  - {kind: dense, units: 10, activation: sigmoid}"}),
        6,
        42,
        "layers[0].activation",
        "got the string 'sigmoid'; did you mean 'logistic'?",
    ),
    "cross_entropy_without_softmax": Case(
        spec({7: "  - {kind: dense, units: 3, activation: logistic}"}),
        8,
        7,
        "loss",
        "cross_entropy expects a softmax output layer, got activation 'logistic' on layers[1]",
    ),
    "binary_cross_entropy_without_logistic": Case(
        spec({8: "loss: binary_cross_entropy"}),
        8,
        7,
        "loss",
        "binary_cross_entropy expects a logistic output layer, got activation 'softmax'",
    ),
    "regression_with_cross_entropy": Case(
        spec({8: "loss: cross_entropy"}, base=REGRESSION),
        8,
        7,
        "loss",
        "regression expects loss mse, got cross_entropy",
    ),
    # --- data ---------------------------------------------------------------------------------
    "class_count_mismatch": Case(
        spec({7: "  - {kind: dense, units: 4, activation: softmax}"}),
        7,
        26,
        "layers[1].units",
        "the output layer has 4 units, but the data has 3 classes; expected units: 3",
    ),
    "input_features_disagree_with_data": Case(
        spec(append=("input: {features: 5}",)),
        9,
        19,
        "input.features",
        "the data has 4 features per sample, but input.features is 5",
    ),
    "unknown_builtin_dataset": Case(
        spec({4: "data: {builtin: Iris}"}),
        4,
        17,
        "data.builtin",
        "got the string 'Iris'; did you mean 'iris'?",
    ),
    "data_without_source": Case(
        spec({4: "data: {file: iris.csv}"}),
        4,
        7,
        "data",
        "expected one of the keys builtin, csv or npz, got keys: file",
    ),
    "unknown_feature_name": Case(
        spec({4: "data: {builtin: iris, features: [petal_length, petal_widht]}"}),
        4,
        48,
        "data.features[1]",
        "unknown feature 'petal_widht' in iris; did you mean 'petal_width'? Expected one of: "
        "sepal_length,",
    ),
    # --- train and export ---------------------------------------------------------------------
    "unknown_optimizer_kind": Case(
        spec(append=("train:", "  optimizer: {kind: rmsprop, lr: 0.01}")),
        10,
        21,
        "train.optimizer.kind",
        "unknown optimizer kind 'rmsprop'; expected one of: adam, sgd",
    ),
    "negative_lr": Case(
        spec(append=("train:", "  optimizer: {kind: sgd, lr: -0.1}")),
        10,
        30,
        "train.optimizer.lr",
        "expected a positive number, got -0.1",
    ),
    "nan_lr": Case(
        spec(append=("train:", "  optimizer: {kind: adam, lr: .nan}")),
        10,
        31,
        "train.optimizer.lr",
        "expected a finite number, got nan",
    ),
    "quoted_lr_is_a_string": Case(
        spec(append=("train:", "  optimizer: {kind: adam, lr: '1e-3'}")),
        10,
        31,
        "train.optimizer.lr",
        "expected a number, got the string '1e-3'",
    ),
    "momentum_one": Case(
        spec(append=("train:", "  optimizer: {kind: sgd, lr: 0.1, momentum: 1.0}")),
        10,
        45,
        "train.optimizer.momentum",
        "expected a number < 1.0, got 1.0",
    ),
    "early_stopping_without_validation_fraction": Case(
        spec(append=("train:", "  epochs: 200", "  early_stopping: {patience: 10}")),
        11,
        19,
        "train.early_stopping",
        "early stopping needs a validation split; set train.validation_fraction",
    ),
    "val_accuracy_monitor_on_regression": Case(
        spec(
            append=(
                "train:",
                "  validation_fraction: 0.1",
                "  early_stopping: {patience: 10, monitor: val_accuracy}",
            ),
            base=REGRESSION,
        ),
        11,
        43,
        "train.early_stopping.monitor",
        "val_accuracy is not a regression metric; expected val_loss, val_mse or val_r2",
    ),
    "opset_out_of_range": Case(
        spec(append=("export: {opset: 9}",)),
        9,
        17,
        "export.opset",
        "expected an integer >= 13, got 9",
    ),
    "duplicate_layer_names": Case(
        spec(
            {
                6: "  - {kind: dense, name: hidden, units: 10, activation: relu}",
                7: "  - {kind: dense, name: hidden, units: 3, activation: softmax}",
            }
        ),
        7,
        25,
        "layers[1].name",
        "layer name 'hidden' is already used by layers[0]",
    ),
    # --- not a spec at all --------------------------------------------------------------------
    "empty_file": Case("", 1, 1, None, "the file is empty; expected a YAML mapping"),
    "whitespace_only_file": Case(
        "   \n\n  \n", 1, 1, None, "the file is empty; expected a YAML mapping"
    ),
    "comment_only_file": Case(
        "# iris spec: TODO\n\n# layers go here\n",
        1,
        1,
        None,
        "the file holds only comments and blank lines; expected a YAML mapping",
    ),
    "top_level_list": Case(
        "- spec_version: 1\n- name: iris-mlp\n",
        1,
        1,
        None,
        "expected a mapping of spec fields, got a list",
    ),
    "multiple_documents": Case(
        spec(append=("---", "spec_version: 1")),
        9,
        1,
        None,
        "expected a single document in the stream but found another document",
    ),
    "non_utf8_file": Case(
        # Saved as Latin-1 by an old editor: the 'é' is the single byte 0xe9, at column 18.
        spec(append=("description: données de Fisher",)).encode("latin-1"),
        9,
        18,
        None,
        "not UTF-8 text (byte 0xe9); expected a YAML spec",
    ),
    # --- YAML syntax --------------------------------------------------------------------------
    "yaml_unclosed_brace": Case(
        spec({6: "  - {kind: dense, units: 10, activation: relu"}),
        7,
        5,
        None,
        "invalid YAML: expected ',' or '}', but got '{' (in the {...} mapping that starts at "
        "line 6, column 5); is a closing '}' missing?",
    ),
    "yaml_unclosed_bracket": Case(
        spec(
            {
                5: "layers: [{kind: dense, units: 10, activation: relu}, "
                "{kind: dense, units: 3, activation: softmax}"
            },
            drop=(6, 7),
        ),
        6,
        1,
        None,
        "invalid YAML: expected ',' or ']', but got a value (in the [...] list that starts at "
        "line 5, column 9); is a closing ']' missing?",
    ),
    "yaml_bad_indentation_key": Case(
        spec(append=("train:", "  epochs: 10", "   batch_size: 8")),
        11,
        14,
        None,
        "invalid YAML: mapping values are not allowed here; check this line's indentation",
    ),
    "yaml_bad_indentation_list_item": Case(
        spec({7: " - {kind: dense, units: 3, activation: softmax}"}),
        7,
        2,
        None,
        "invalid YAML: bad indentation: expected a key in column 1 (lined up with line 1) or a "
        "less indented line, but found a more indented list item",
    ),
    "yaml_tab_indentation": Case(
        spec(append=("train:", "\tepochs: 10")),
        10,
        1,
        None,
        "found character '\\t' that cannot start any token; indent with spaces",
    ),
    "yaml_unclosed_quote": Case(
        spec({2: "name: 'iris-mlp"}),
        9,
        1,
        None,
        "invalid YAML: found the end of the file (in the quoted string that starts at line 2, "
        "column 7)",
    ),
    "duplicate_key": Case(
        spec(append=("loss: mse",)),
        9,
        1,
        "loss",
        "duplicate key 'loss'; it is already set at line 8, column 1",
    ),
    "duplicate_key_in_layer": Case(
        spec({7: "  - {kind: dense, units: 3, activation: softmax, units: 4}"}),
        7,
        50,
        "layers[1].units",
        "duplicate key 'units'; it is already set at line 7, column 19",
    ),
    # --- unsafe tags: reported, never constructed (the runner checks nothing ran) ---------------
    "python_object_apply_tag": Case(
        spec({2: 'name: !!python/object/apply:os.system ["touch pwned"]'}),
        2,
        7,
        "name",
        "unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'; a spec holds "
        "plain mappings, lists and scalars only",
    ),
    "python_name_tag": Case(
        spec({2: "name: !!python/name:os.system"}),
        2,
        7,
        "name",
        "unsupported YAML tag 'tag:yaml.org,2002:python/name:os.system'",
    ),
}


def write_case(directory: Path, case: Case) -> Path:
    path = directory / "spec.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")
    return path


def assert_located(stderr: str, path: Path, case: Case) -> None:
    """One stderr line is ``FILE:LINE:COL: [PATH: ]...MESSAGE...``."""
    assert "Traceback" not in stderr
    prefix = f"{path}:{case.line}:{case.col}: " + (f"{case.path}: " if case.path else "")
    assert any(line.startswith(prefix) and case.message in line for line in stderr.splitlines()), (
        f"expected a line starting {prefix!r} containing {case.message!r}; stderr:\n{stderr}"
    )


@pytest.fixture
def no_side_effects(tmp_path, monkeypatch):
    """Run in ``tmp_path`` with ``os.system`` replaced, so an unsafe load would be seen."""
    calls: list[str] = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command) or 0)
    monkeypatch.chdir(tmp_path)
    yield
    assert calls == [], "os.system was called while loading a spec"
    assert not (tmp_path / "pwned").exists()


def test_cases_are_enough_and_distinct():
    assert len(CASES) >= 30
    texts = [c.text for c in CASES.values()]
    assert len(set(texts)) == len(texts)


def test_base_specs_are_valid(tmp_path, capsys):
    """The unmodified texts validate, so each case fails only because of its own mistake."""
    for name, base in (("base.yaml", BASE), ("regression.yaml", REGRESSION)):
        path = tmp_path / name
        path.write_text(spec(base=base), encoding="utf-8")
        assert main(["validate", str(path)]) == 0, capsys.readouterr().err
        assert f"{path}: valid" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_malformed_spec_is_located(name, tmp_path, capsys, no_side_effects):
    case = CASES[name]
    path = write_case(tmp_path, case)
    rc = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert rc == 2, err
    assert out == ""
    assert_located(err, path, case)


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "iris.yaml"
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err == f"{path}: no such file\n"


def test_directory_instead_of_file(tmp_path, capsys):
    path = tmp_path / "specs"
    path.mkdir()
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err == f"{path}: is a directory; expected a YAML spec file\n"


@pytest.mark.parametrize(
    "name", ["negative_units", "yaml_unclosed_brace", "python_object_apply_tag"]
)
def test_python_m_nnspec_validate(name, tmp_path):
    """The real entry point: exit code 2, the located line on stderr, no traceback."""
    case = CASES[name]
    path = write_case(tmp_path, case)
    proc = subprocess.run(
        [sys.executable, "-m", "nnspec", "validate", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert_located(proc.stderr, path, case)
    assert not (tmp_path / "pwned").exists()
