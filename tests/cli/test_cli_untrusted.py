"""The command line on inputs from others: a bench batch that cannot fit, prediction CSVs with
duplicated columns, class names that a spreadsheet would run, and labels out of range."""

from __future__ import annotations

import csv
import io

import numpy as np
import onnx
import pytest
from conftest import ROOT
from onnx import TensorProto, helper, numpy_helper

import nnspec
from nnspec.cli import main

IRIS = ROOT / "specs" / "iris.yaml"


def run(capfd, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert "Traceback" not in err
    return rc, out, err


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "iris.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(IRIS)), path)
    return path


def test_bench_refuses_a_batch_that_cannot_fit(capfd, iris):
    rc, _, err = run(capfd, "bench", iris, "--batch", "1000000000000", "--repeats", "1")
    assert rc == 2 and "--batch 1000000000000" in err and "refused before allocating" in err


def test_predict_refuses_a_duplicated_feature_column(capfd, iris, tmp_path):
    header = "sepal_length,sepal_width,petal_length,petal_width,petal_width"
    (tmp_path / "x.csv").write_text(f"{header}\n5.1,3.5,1.4,0.2,9\n")
    rc, _, err = run(capfd, "predict", iris, tmp_path / "x.csv")
    assert rc == 2 and "column name 'petal_width' appears 2 times in the header" in err


def test_predict_refuses_digits_python_would_accept(capfd, iris, tmp_path):
    for cell in ("5_1", "\u0665"):
        (tmp_path / "x.csv").write_text(
            f"sepal_length,sepal_width,petal_length,petal_width\n{cell},3.5,1.4,0.2\n"
        )
        rc, _, err = run(capfd, "predict", iris, tmp_path / "x.csv")
        assert rc == 2 and "x.csv:2: column 'sepal_length': expected a number in ASCII" in err


def test_class_names_that_are_formulas_are_neutralised_in_the_csv(capfd, iris, tmp_path):
    model = onnx.load(str(iris))
    for p in model.metadata_props:
        if p.key == "nnspec_class_names":
            p.value = '["=cmd|\' /C calc\'!A0", "+1+1", "@SUM(1)"]'
    onnx.save(model, str(tmp_path / "f.onnx"))
    rows = ROOT / "examples" / "new_flowers.csv"
    rc, out, err = run(capfd, "predict", tmp_path / "f.onnx", rows)
    assert rc == 0, err
    table = list(csv.reader(io.StringIO(out)))
    assert table[0][1:] == ["p_=cmd|' /C calc'!A0", "p_+1+1", "p_@SUM(1)"]
    assert {row[0][0] for row in table[1:]} == {"'"}  # every label starts with the quote


def _constant_label_model(label) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Softmax", ["x"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["x"], ["a"], axis=1, keepdims=0),
        helper.make_node("Mul", ["a", "zero"], ["z"]),
        helper.make_node("Add", ["z", "k"], ["label"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(np.array(label, np.int64), "k"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


@pytest.mark.parametrize("label", [-1, 4])
def test_predict_refuses_a_label_out_of_range(capfd, tmp_path, label):
    onnx.save(_constant_label_model(label), str(tmp_path / "m.onnx"))
    (tmp_path / "x.csv").write_text("1,2,3,4\n5,6,7,8\n")
    rc, _, err = run(capfd, "predict", tmp_path / "m.onnx", tmp_path / "x.csv")
    assert rc == 2 and f"the model returned the class index {label}; expected 0 to 3" in err


def test_import_never_writes_over_the_model_it_imports(capfd, iris, tmp_path):
    import shutil

    model = tmp_path / "m.onnx"
    shutil.copy(iris, model)
    before = model.read_bytes()
    rc, _, err = run(capfd, "import", model, "-o", model, "--force", "-q")
    assert rc == 2 and "the spec would overwrite the model" in err
    assert model.read_bytes() == before
