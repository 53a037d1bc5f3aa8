"""Malformed specs: each realistic mistake gives exit code 2 and one located line, no traceback.

Every case is run through ``nnspec validate`` in-process and checked for the file name, the
1-based ``line:col`` of the offending YAML node (counted by hand from the base specs in
tests/spec_cases.py, whose lines the cases edit), the YAML path where there is one, and the
gist of the message.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from spec_cases import (
    BASE,
    CONV,
    REGRESSION,
    Case,
    assert_located,
    conv,
    kinds_needed,
    spec,
    write_case,
)

from nnspec.cli.commands import main
from nnspec.layers import LAYERS

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
        "expected an integer or 'auto', got the string '10'",
    ),
    "units_float": Case(
        spec({6: "  - {kind: dense, units: 10.5, activation: relu}"}),
        6,
        26,
        "layers[0].units",
        "expected an integer or 'auto', got 10.5",
    ),
    "units_bool": Case(
        spec({6: "  - {kind: dense, units: true, activation: relu}"}),
        6,
        26,
        "layers[0].units",
        "expected an integer or 'auto', got true",
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
        "expected one of the keys builtin, csv, npz, idx or parquet, got keys: file",
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
    # --- ConvNets: window fields ----------------------------------------------------------------
    "conv_kernel_size_zero": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: 0, activation: relu}"}),
        6,
        45,
        "layers[0].kernel_size",
        "expected a positive integer, got 0",
    ),
    "conv_kernel_size_one_item": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: [3], activation: relu}"}),
        6,
        45,
        "layers[0].kernel_size",
        "expected at least 2 item(s), got 1",
    ),
    "conv_kernel_size_three_items": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: [3, 3, 3], activation: relu}"}),
        6,
        45,
        "layers[0].kernel_size",
        "expected at most 2 item(s), got 3",
    ),
    "conv_stride_zero": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: 3, stride: 0}"}),
        6,
        56,
        "layers[0].stride",
        "expected a positive integer, got 0",
    ),
    "conv_negative_padding": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: 3, padding: -1}"}),
        6,
        57,
        "layers[0].padding",
        "expected an integer >= 0, got -1",
    ),
    "conv_unknown_padding_string": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: 3, padding: full}"}),
        6,
        57,
        "layers[0].padding",
        "expected 'valid' or 'same', an integer or a list, got the string 'full'",
    ),
    "conv_trainable_string": Case(
        conv({6: '  - {kind: conv2d, filters: 4, kernel_size: 3, trainable: "no"}'}),
        6,
        59,
        "layers[0].trainable",
        "expected true or false, got the string 'no'",
    ),
    "trainable_on_maxpool": Case(
        conv({7: "  - {kind: maxpool2d, kernel_size: 2, trainable: false}"}),
        7,
        39,
        "layers[1].trainable",
        "unknown key 'trainable'; expected one of: kernel_size, kind, name, padding, stride",
    ),
    "misspelled_kind_conv2D": Case(
        conv({6: "  - {kind: conv2D, filters: 4, kernel_size: 3}"}),
        6,
        12,
        "layers[0].kind",
        "unknown layer kind 'conv2D'; did you mean 'conv2d'? Expected one of: "
        + ", ".join(sorted(LAYERS)),
    ),
    "misspelled_kind_maxpool": Case(
        conv({7: "  - {kind: maxpool, kernel_size: 2}"}),
        7,
        12,
        "layers[1].kind",
        "unknown layer kind 'maxpool'; did you mean 'maxpool2d'?",
    ),
    "softmax_on_conv2d": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: 3, activation: softmax}"}),
        6,
        60,
        "layers[0].activation",
        "expected 'identity', 'logistic', 'tanh', 'gaussian', 'relu' or 'leaky_relu', got the "
        "string 'softmax'",
    ),
    "dropout_rate_one": Case(
        conv({7: "  - {kind: dropout, rate: 1.0}"}),
        7,
        27,
        "layers[1].rate",
        "expected a number < 1.0, got 1.0",
        kinds=("dropout",),
    ),
    "dropout_rate_integer_one": Case(
        conv({7: "  - {kind: dropout, rate: 1}"}),
        7,
        27,
        "layers[1].rate",
        "expected a number < 1.0, got 1",
        kinds=("dropout",),
    ),
    "batchnorm_negative_epsilon": Case(
        conv({7: "  - {kind: batchnorm, epsilon: -1.0e-5}"}),
        7,
        32,
        "layers[1].epsilon",
        "expected a positive number, got -1e-05",
        kinds=("batchnorm",),
    ),
    "batchnorm_epsilon_zero": Case(
        conv({7: "  - {kind: batchnorm, epsilon: 0}"}),
        7,
        32,
        "layers[1].epsilon",
        "expected a positive number, got 0",
        kinds=("batchnorm",),
    ),
    # --- ConvNets: shapes (located at the layer, "layers[i] (kind): ...") ----------------------
    "conv_kernel_larger_than_input": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: 9}"}),
        6,
        5,
        "layers[0] (conv2d)",
        "input 1×8×8 is smaller than the 9×9 kernel",
        anchored=True,
    ),
    "maxpool_window_larger_than_input": Case(
        # conv 8×8 on 8×8 leaves 16×1×1.
        conv({6: "  - {kind: conv2d, filters: 16, kernel_size: 8}"}),
        7,
        5,
        "layers[1] (maxpool2d)",
        "input 16×1×1 is smaller than the 2×2 window",
        anchored=True,
    ),
    "conv_kernel_pair_item_zero": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: [3, 0]}"}),
        6,
        49,
        "layers[0].kernel_size[1]",
        "expected a positive integer, got 0",
        anchored=True,
    ),
    "conv_padding_pair_item_negative": Case(
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: 3, padding: [1, -1]}"}),
        6,
        61,
        "layers[0].padding[1]",
        "expected an integer >= 0, got -1",
        anchored=True,
    ),
    "conv_stride_larger_than_input": Case(
        # One 3×3 window, and the rest of the 8×8 image never read.
        conv({6: "  - {kind: conv2d, filters: 4, kernel_size: 3, stride: 10}"}),
        6,
        5,
        "layers[0] (conv2d)",
        "stride 10×10 is larger than the input 1×8×8: the kernel would be applied once and the "
        "rest of the input skipped",
        anchored=True,
    ),
    "maxpool_padding_as_large_as_window": Case(
        conv({7: "  - {kind: maxpool2d, kernel_size: 2, padding: 2}"}),
        7,
        5,
        "layers[1] (maxpool2d)",
        "padding 2×2 must be smaller than the 2×2 pooling window",
        anchored=True,
    ),
    "conv_groups_do_not_divide_input_channels": Case(
        conv({6: "  - {kind: conv2d, filters: 3, kernel_size: 3, groups: 3}"}),
        6,
        5,
        "layers[0] (conv2d)",
        "groups 3 does not divide the 1 input channels",
        anchored=True,
    ),
    "conv_groups_do_not_divide_filters": Case(
        conv({7: "  - {kind: conv2d, filters: 6, kernel_size: 3, groups: 4}"}),
        7,
        5,
        "layers[1] (conv2d)",
        "groups 4 does not divide the 6 filters",
        anchored=True,
    ),
    "conv_on_flat_input": Case(
        conv(append=("input: {features: 64}",)),
        6,
        5,
        "layers[0] (conv2d)",
        "expected an image input (batch, channels, height, width), got a flat input "
        "(batch, 64); give input: {shape: [C, H, W]}",
        anchored=True,
    ),
    "conv_on_two_axis_shape": Case(
        conv(append=("input: {shape: [8, 8]}",)),
        6,
        5,
        "layers[0] (conv2d)",
        "for one-channel images give input: {shape: [1, 8, 8]}",
    ),
    "dense_after_conv_without_flatten": Case(
        conv(drop=(7, 8)),
        7,
        5,
        "layers[1] (dense)",
        "expected a flat input (batch, features), got a 3-D sample shape 4×6×6; put a "
        "flatten layer before it",
        anchored=True,
    ),
    "last_layer_not_dense": Case(
        conv(drop=(9,)),
        8,
        12,
        "layers[2].kind",
        "the last layer is the output layer and must be dense (its units are the classes or "
        "targets), got flatten",
    ),
    # --- ConvNets: input ----------------------------------------------------------------------
    "image_shape_disagrees_with_data": Case(
        conv(append=("input: {shape: [1, 28, 28]}",)),
        11,
        16,
        "input.shape",
        "the data has 64 features per sample (1×8×8 images), but input.shape is [1, 28, 28] "
        "(784 values)",
    ),
    "image_shape_four_items": Case(
        conv(append=("input: {shape: [1, 1, 8, 8]}",)),
        11,
        16,
        "input.shape",
        "expected at most 3 item(s), got 4",
    ),
    "input_without_features_or_shape": Case(
        conv(append=("input: {}",)),
        11,
        8,
        "input",
        "expected features: N or shape: [channels, height, width]",
        anchored=True,
    ),
    "input_features_and_shape_disagree": Case(
        conv(append=("input: {features: 63, shape: [1, 8, 8]}",)),
        11,
        8,
        "input",
        "features (63) and shape [1, 8, 8] (= 64 values) disagree; give one of them",
        anchored=True,
    ),
    # --- tabular preprocessing ------------------------------------------------------------------
    "impute_strategy_misspelled": Case(
        spec(append=("preprocess: {impute: {strategy: meadian}}",)),
        9,
        33,
        "preprocess.impute.strategy",
        "expected 'median', 'mean', 'most_frequent' or 'constant', got the string 'meadian'; "
        "did you mean 'median'?",
    ),
    "categorical_on_builtin_data": Case(
        spec(append=("preprocess: {categorical: [petal_length]}",)),
        9,
        27,
        "preprocess.categorical",
        "applies to tables of named columns (data: {csv: ...} or {parquet: ...}), got builtin data",
    ),
    "unknown_policy_misspelled": Case(
        spec(append=("preprocess: {unknown: skip}",)),
        9,
        23,
        "preprocess.unknown",
        "expected 'ignore' or 'error', got the string 'skip'",
    ),
    "max_categories_zero": Case(
        spec(append=("preprocess: {max_categories: 0}",)),
        9,
        30,
        "preprocess.max_categories",
        "expected a positive integer, got 0",
    ),
}


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
    for name, base in (("base.yaml", BASE), ("regression.yaml", REGRESSION), ("conv.yaml", CONV)):
        path = tmp_path / name
        path.write_text(spec(base=base), encoding="utf-8")
        assert main(["validate", str(path)]) == 0, capsys.readouterr().err
        assert f"{path}: valid" in capsys.readouterr().out


def with_known_bugs(names) -> list:
    """``names`` as parameters, marked with the layer kinds each case needs, and the cases of
    a known nnspec bug as strict xfails."""
    params = []
    for name in names:
        marks = [pytest.mark.kinds(*kinds_needed(CASES[name]))]
        if CASES[name].xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=CASES[name].xfail))
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name", with_known_bugs(CASES))
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
    "name",
    [
        "negative_units",
        "yaml_unclosed_brace",
        "python_object_apply_tag",
        "conv_kernel_larger_than_input",
        "maxpool_window_larger_than_input",
        "misspelled_kind_conv2D",
    ],
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


@pytest.mark.parametrize(
    "name",
    [
        "conv_kernel_size_zero",
        "conv_stride_zero",
        "conv_negative_padding",
        "conv_unknown_padding_string",
        "conv_kernel_pair_item_zero",
        "conv_padding_pair_item_negative",
    ],
)
def test_one_wrong_window_value_is_one_line(name, tmp_path, capsys):
    """kernel_size, stride and padding take an integer or a pair (padding also a word): a wrong
    value is one mistake, so one line, not one per form the field could have taken."""
    case = CASES[name]
    path = write_case(tmp_path, case)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert_located(err, path, case)
    assert len(err.splitlines()) == 1, err
