"""Layer tables of ``nnspec validate`` and ``nnspec inspect`` (text and --json), and what
``nnspec train`` prints: the progress bar while training and the summary at the end."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import onnx
import pytest
from conftest import ROOT, SPECS
from onnx import TensorProto, helper

from nnspec import cli, load_spec
from nnspec.pipeline import resolve, train
from nnspec.spec.shapes import print_summary, summary, summary_table

SPEC_DIR = ROOT / "specs"
HEADER = re.compile(r"^layer +kind +output shape +params +trainable$")
ROW = re.compile(r"^(\S+) {2,}(\S*) +(\(batch[^)]*\)) +([\d,]+)(?: {3}(yes|no))?$")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def parse_table(text: str) -> dict:
    """The rows and totals of a printed table, checked for shape on the way."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if HEADER.match(line))
    rule = lines[start + 1]
    assert set(rule) == {"-"} and len(rule) == len(lines[start])
    rows, totals, i = [], {}, start + 2
    while lines[i] != rule:
        found = ROW.match(lines[i])
        assert found, f"not a table row: {lines[i]!r}"
        rows.append(found.groups())
        i += 1
    for line in lines[i + 1 : i + 4]:
        label, value = line.split()
        totals[label] = int(value.replace(",", ""))
    assert list(totals) == ["total", "trainable", "frozen"]
    return {"rows": rows, "totals": totals}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_validate_table_matches_json_for_every_shipped_spec(capsys, spec):
    code, out, _ = run(capsys, "validate", spec)
    assert code == 0
    assert "\x1b" not in out, "escape codes in output that is not a terminal"
    assert all(line == line.rstrip() for line in out.splitlines()), "trailing spaces"
    table = parse_table(out)
    code, js, _ = run(capsys, "validate", spec, "--json")
    data = json.loads(js)
    assert [r[0] for r in table["rows"]] == ["input"] + [layer["name"] for layer in data["layers"]]
    for row, layer in zip(table["rows"][1:], data["layers"], strict=True):
        assert row[1] == layer["kind"]
        assert row[2] == "(" + ", ".join(str(d or "batch") for d in layer["output_shape"]) + ")"
        assert int(row[3].replace(",", "")) == layer["params"]
        assert row[4] == (("yes" if layer["trainable"] else "no") if layer["params"] else None)
    assert table["totals"] == {
        "total": data["total_params"],
        "trainable": data["trainable_params"],
        "frozen": data["frozen_params"],
    }
    assert data["total_params"] == sum(layer["params"] for layer in data["layers"])
    assert out.rstrip().endswith(f"{spec}: valid")


def test_alexnet_totals(capsys):
    data = json.loads(run(capsys, "validate", SPEC_DIR / "alexnet.yaml", "--json")[1])
    assert (data["total_params"], data["trainable_params"], data["frozen_params"]) == (
        60_965_224,
        60_965_224,
        0,
    )


def test_long_layer_names_are_never_wrapped_or_cut(tmp_path, capsys):
    long = "a_" + "very_" * 30 + "long_layer_name"  # 169 characters
    text = (
        (SPEC_DIR / "iris.yaml")
        .read_text()
        .replace("{kind: dense, units: 10", "{kind: dense, name: " + long + ", units: 10")
    )
    (tmp_path / "long.yaml").write_text(text)
    code, out, _ = run(capsys, "validate", tmp_path / "long.yaml")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith(long))
    assert ROW.match(row) and row.split()[1:] == ["dense", "(batch,", "10)", "50", "yes"]


def test_frozen_layers_are_counted_apart():
    spec = load_spec(SPEC_DIR / "dbn.yaml")
    io_, rows = resolve(spec)
    rows[1] = type(rows[1])(rows[1].name, rows[1].kind, rows[1].output_shape, rows[1].params, False)
    data = summary(spec, io_, rows)
    assert data["frozen_params"] == 250_500
    assert data["trainable_params"] == 1_665_010 - 250_500
    table = parse_table(summary_table(data))
    assert table["rows"][2][4] == "no" and table["rows"][1][4] == "yes"
    assert table["totals"]["frozen"] == 250_500


def test_piped_table_text_is_exactly_this(capsys):
    """The piped text, char for char: columns three spaces apart, params right-aligned, rules
    of '-' as wide as the table, no trailing spaces (scripts and logs read this)."""
    code, out, _ = run(capsys, "validate", SPEC_DIR / "dbn.yaml")
    assert code == 0
    assert out == (
        "dbn-784-500-500-2000-10 (classification)\n"
        "layer       kind    output shape       params   trainable\n"
        "---------------------------------------------------------\n"
        "input               (batch, 784)            0\n"
        "hidden1     dense   (batch, 500)      392,500   yes\n"
        "hidden2     dense   (batch, 500)      250,500   yes\n"
        "hidden3     dense   (batch, 2000)   1,002,000   yes\n"
        "output      dense   (batch, 10)        20,010   yes\n"
        "---------------------------------------------------------\n"
        "total                               1,665,010\n"
        "trainable                           1,665,010\n"
        "frozen                                      0\n"
        f"{SPEC_DIR / 'dbn.yaml'}: valid\n"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_the_same_table_with_a_bold_header(monkeypatch):
    """A terminal sees the piped text, char for char, with the title and header made bold."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    spec = load_spec(SPEC_DIR / "lenet.yaml")
    data = summary(spec, *resolve(spec))
    tty = _Terminal()
    print_summary(data, file=tty)
    styled = tty.getvalue().splitlines()
    assert styled[0] == "\x1b[1mlenet (classification)\x1b[0m"
    assert HEADER.match(styled[1].removeprefix("\x1b[1m").removesuffix("\x1b[0m"))
    assert all("\x1b" not in line for line in styled[2:])
    plain = re.sub(r"\x1b\[[0-9;]*m", "", tty.getvalue())
    piped = io.StringIO()
    print_summary(data, file=piped)
    assert plain == piped.getvalue() == summary_table(data) + "\n"
    assert parse_table(plain)["totals"] == {"total": 44_426, "trainable": 44_426, "frozen": 0}


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_color_or_a_dumb_terminal_gets_plain_text(monkeypatch, env):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = load_spec(SPEC_DIR / "lenet.yaml")
    data = summary(spec, *resolve(spec))
    tty = _Terminal()
    print_summary(data, file=tty)
    assert tty.getvalue() == summary_table(data) + "\n"


# -- inspect ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inspect")
    assert cli.main(["compile", str(SPEC_DIR / "lenet.yaml"), "-o", str(tmp / "lenet.onnx")]) == 0
    return tmp / "lenet.onnx"


def test_inspect_prints_the_validate_table(compiled, capsys):
    _, validated, _ = run(capsys, "validate", SPEC_DIR / "lenet.yaml")
    code, out, _ = run(capsys, "inspect", compiled)
    assert code == 0
    assert "\x1b" not in out
    assert "  IR:        8; opset: ai.onnx 18" in out
    assert parse_table(out) == parse_table(validated)


def test_inspect_json_has_the_keys_of_validate_json(compiled, capsys):
    validated = json.loads(run(capsys, "validate", SPEC_DIR / "lenet.yaml", "--json")[1])
    code, out, _ = run(capsys, "inspect", compiled, "--json")
    assert code == 0
    data = json.loads(out)
    for key in ("name", "task", "input", "layers", "total_params", "trainable_params"):
        assert data[key] == validated[key], key
    model = data["model"]
    assert model["opsets"] == {"ai.onnx": 18} and model["ir_version"] == 8
    assert model["inputs"] == [{"name": "input", "type": "float32 (batch, 1, 28, 28)"}]
    assert [o["name"] for o in model["outputs"]] == ["probabilities", "label"]
    assert model["params"] == data["total_params"] == 44_426
    assert model["metadata"]["nnspec_class_names"] == [str(d) for d in range(10)]
    assert (
        model["metadata"]["nnspec_spec_sha256"] == load_spec(SPEC_DIR / "lenet.yaml").source.sha256
    )
    assert "nnspec_spec_yaml" not in model["metadata"] and model["spec_yaml_lines"] > 10


def test_inspect_a_model_not_written_by_nnspec(tmp_path, capsys):
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], np.ones(4, np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
        initializer=[w],
    )
    onnx.save(helper.make_model(graph), tmp_path / "foreign.onnx")
    code, out, _ = run(capsys, "inspect", tmp_path / "foreign.onnx")
    assert code == 0
    assert "params:    4" in out and "layers: not shown: no embedded nnspec spec" in out
    data = json.loads(run(capsys, "inspect", tmp_path / "foreign.onnx", "--json")[1])
    assert data["layers"] is None and data["total_params"] == 4 and data["name"] == "foreign"
    assert data["model"]["inputs"] == [{"name": "x", "type": "float32 (n, 2)"}]


# -- train: the progress bar and the final summary ---------------------------------------------


def test_train_prints_a_final_summary(tmp_path, capsys):
    code, out, err = run(capsys, "train", SPEC_DIR / "iris.yaml", "-o", tmp_path / "iris.onnx")
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(
        r"iris-mlp: \d+ epochs in \d+\.\d\d s, stopped early \(best epoch \d+\)", lines[0]
    )
    assert re.fullmatch(r"test: loss \d\.\d{4}, accuracy \d\.\d{4}", lines[1])
    assert re.fullmatch(
        r"parity \(onnxruntime CPUExecutionProvider vs NumPy, 30 samples\): "
        r"max abs err \S+, max rel err \S+",
        lines[2],
    )
    assert lines[3] == f"wrote {tmp_path / 'iris.onnx'}"
    assert len(lines) == 4
    assert err == ""  # not a terminal: no progress bar


def test_train_quiet_prints_nothing(tmp_path, capsys):
    code, out, err = run(capsys, "train", SPEC_DIR / "iris.yaml", "-o", tmp_path / "m.onnx", "-q")
    assert (code, out, err) == (0, "", "")


def test_progress_bar_shows_loss_metric_and_eta(capsys):
    """One bar, on stderr, with the epoch count, the ETA and the current loss and accuracy."""
    train(load_spec(SPEC_DIR / "iris.yaml"), progress=True)
    err = capsys.readouterr().err
    last = re.split(r"[\r\n]", err.strip())[-1]
    assert last.startswith("iris-mlp:")
    assert re.search(r"\d+/\d+ \[\d\d:\d\d<\d\d:\d\d", last), last  # elapsed<remaining (ETA)
    assert re.search(r"loss=\d", last) and re.search(r"acc=\d", last), last
    assert re.search(r"val_loss=\d", last) and re.search(r"val_acc=\d", last), last
    # iris stops early (patience 20 of 200 epochs): the bar ends full, at the epochs run.
    done, total = map(int, re.search(r"(\d+)/(\d+) \[", last).groups())
    assert done == total < 200 and "100%" in last, last


def test_the_shipped_specs_are_all_covered():
    # The summaries above are checked on every spec under specs/; make sure there are some.
    assert len(SPECS) >= 7 and (SPEC_DIR / "alexnet.yaml") in SPECS
