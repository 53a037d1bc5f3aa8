"""Models from others in nnspec's own readers (``inspect``, ``init.from``, plots): special
files, non-finite or non-numeric weights, metadata that lies about the graph or cannot be
parsed; each a clear message with exit code 2 (3 for a failed check), never a traceback, with
nothing written and within a bounded memory."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT
from onnx import numpy_helper

import nnspec
from nnspec.cli import main
from nnspec.errors import ParityError
from nnspec.onnxio import parity

IRIS = ROOT / "specs" / "iris.yaml"


@pytest.fixture(scope="module")
def iris(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("iris") / "iris.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(IRIS)), path)
    return path


def run(capfd, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert "Traceback" not in err, err
    return rc, out, err


def edited(src: Path, dest: Path, edit) -> Path:
    model = onnx.load(str(src))
    edit(model)
    dest.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dest))
    return dest


def set_meta(key: str, value: str):
    def edit(model):
        for p in model.metadata_props:
            if p.key == key:
                p.value = value
                return
        model.metadata_props.add(key=key, value=value)

    return edit


def set_weight(name: str, value):
    def edit(model):
        for i, t in enumerate(model.graph.initializer):
            if t.name == name:
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(value(t), name))

    return edit


def finetune_spec(tmp_path: Path, model: str) -> Path:
    text = IRIS.read_text() + f"init: {{from: {model}}}\n"
    (tmp_path / "ft.yaml").write_text(text)
    return tmp_path / "ft.yaml"


# --- special files -----------------------------------------------------------------------------


def test_inspect_and_init_from_refuse_dev_zero(capfd, tmp_path):
    rc, _, err = run(capfd, "inspect", "/dev/zero")
    assert rc == 2 and "is a character device; expected a regular model file" in err
    rc, _, err = run(capfd, "validate", finetune_spec(tmp_path, "/dev/zero"))
    assert rc == 2 and "init.from: /dev/zero: is a character device" in err


def test_a_fifo_as_the_model_or_init_from_does_not_hang(capfd, tmp_path):
    os.mkfifo(tmp_path / "m.onnx")
    spec = finetune_spec(tmp_path, "m.onnx")
    for args in (["inspect", tmp_path / "m.onnx"], ["validate", spec]):
        out: list = []
        t = threading.Thread(target=lambda a=args, o=out: o.append(main([str(x) for x in a])))
        t.daemon = True
        t.start()
        t.join(20)
        assert out == [2], "blocked on the FIFO"
    assert "FIFO (named pipe), which would block" in capfd.readouterr().err


# --- finite everywhere -------------------------------------------------------------------------


def test_nan_in_a_parity_comparison_is_a_failure():
    ok = parity.compare(np.ones(3), np.ones(3))
    assert ok["worst_ratio"] == 0
    bad = parity.compare(np.array([1.0, np.nan]), np.array([1.0, 1.0]))
    assert not bad["worst_ratio"] <= 1


def test_a_network_with_nan_weights_is_never_exported(capfd, tmp_path):
    network = nnspec.build_network(nnspec.load_spec(IRIS))
    network.layers[0].params["weight"][0, 0] = np.nan
    with pytest.raises(ParityError, match="dense_0.weight has a NaN or inf at index \\(0, 0\\)"):
        nnspec.export(network, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_init_from_with_nan_weights_is_refused_at_validate(capfd, iris, tmp_path):
    def nan(t):
        a = numpy_helper.to_array(t).copy()
        a.flat[3] = np.nan
        return a

    edited(iris, tmp_path / "nan.onnx", set_weight("dense_0.weight", nan))
    rc, _, err = run(capfd, "validate", finetune_spec(tmp_path, "nan.onnx"))
    assert rc == 2 and "the weight dense_0.weight has a NaN or inf at index (0, 3)" in err


def test_init_from_with_a_string_weight_is_refused(capfd, iris, tmp_path):
    edited(iris, tmp_path / "s.onnx", set_weight("dense_0.bias", lambda t: np.array(["a"] * 10)))
    rc, _, err = run(capfd, "validate", finetune_spec(tmp_path, "s.onnx"))
    assert rc == 2 and "the weight dense_0.bias holds object values; expected numbers" in err


@pytest.mark.parametrize("drop", ["preprocess.scale", "preprocess.mean"])
def test_init_from_with_half_a_standardization_is_refused(capfd, iris, tmp_path, drop):
    def edit(model):
        keep = [t for t in model.graph.initializer if t.name != drop]
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)

    edited(iris, tmp_path / "h.onnx", edit)
    rc, _, err = run(capfd, "validate", finetune_spec(tmp_path, "h.onnx"))
    assert rc == 2 and f"but no {drop}; expected both" in err


# --- metadata that cannot be parsed, or lies ----------------------------------------------------


@pytest.mark.parametrize(
    "key, value, rc, shown",
    [
        ("nnspec_param_count", "abc", 2, "nnspec_param_count: expected an integer, got 'abc'"),
        ("nnspec_param_count", "1_000", 2, "expected an integer, got '1_000'"),
        ("nnspec_input_shape", "[1e400]", 0, "layers: not shown"),
        ("nnspec_input_shape", "[50000000]", 0, "does not describe this graph"),
        ("nnspec_class_names", "[" * 10_000, 0, "layers: not shown"),
    ],
)
def test_inspect_survives_bad_metadata(capfd, iris, tmp_path, key, value, rc, shown):
    path = edited(iris, tmp_path / "m.onnx", set_meta(key, value))
    got, out, err = run(capfd, "inspect", path)
    assert got == rc and shown in out + err, out + err
    got, out, err = run(capfd, "inspect", path, "--json")
    assert got == rc
    if rc == 0:
        json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))


def test_inspect_shows_an_unknown_element_type(capfd, iris, tmp_path):
    def edit(model):
        model.graph.input[0].type.tensor_type.elem_type = 999

    rc, out, _ = run(capfd, "inspect", edited(iris, tmp_path / "m.onnx", edit))
    assert rc == 0 and "unknown element type 999" in out


def test_inspect_json_has_no_bare_nan(capfd, iris, tmp_path):
    path = edited(iris, tmp_path / "m.onnx", set_meta("nnspec_test_metrics", '{"r2": NaN}'))
    rc, out, _ = run(capfd, "inspect", path, "--json")
    assert rc == 0
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert data["model"]["metadata"]["nnspec_test_metrics"] == {"r2": None}


@pytest.mark.parametrize("location", ["w\x00.data", "x" * 5000])
def test_inspect_and_init_from_refuse_locations_that_are_not_file_names(
    capfd, iris, tmp_path, location
):
    def edit(model):
        t = model.graph.initializer[0]
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        t.external_data.add(key="location", value=location)

    path = edited(iris, tmp_path / "m.onnx", edit)
    rc, out, _ = run(capfd, "inspect", path)
    assert rc == 0 and "which is refused" in out
    rc, _, err = run(capfd, "validate", finetune_spec(tmp_path, "m.onnx"))
    assert rc == 2 and "refused: expected a file name" in err


def _regression_model(tmp_path: Path) -> Path:
    spec = nnspec.load_spec(
        "spec_version: 1\nname: r\ntask: regression\ninput: {features: 1}\n"
        "layers:\n  - {kind: dense, units: 3, activation: tanh}\n"
        "  - {kind: dense, units: 1, activation: identity}\nloss: mse\n"
    )
    path = tmp_path / "r.onnx"
    nnspec.export(nnspec.build_network(spec), path)
    return path


def test_plot_fit_refuses_metadata_that_claims_a_huge_input(capfd, tmp_path):
    pytest.importorskip("matplotlib")
    model = _regression_model(tmp_path)
    spec = dict(p for p in ((m.key, m.value) for m in onnx.load(str(model)).metadata_props))
    huge = spec["nnspec_spec_yaml"].replace("features: 1", "features: 50000000")
    path = edited(model, tmp_path / "h.onnx", set_meta("nnspec_spec_yaml", huge))
    path = edited(path, path, set_meta("nnspec_input_shape", "[50000000]"))
    tracemalloc.start()
    try:
        rc, _, err = run(capfd, "plot", "fit", path, "-o", tmp_path / "f.png")
        used = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rc == 2 and "does not describe this graph" in err, err
    # The model is a few KB; its first layer as claimed would take 1.2 GB (measured: < 1 MB).
    assert used < 2**24 and not (tmp_path / "f.png").exists()

    # The graph edited to match, the weights still those of one input: refused all the same.
    def edit(model):
        model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 50_000_000

    edited(path, path, edit)
    rc, _, err = run(capfd, "plot", "fit", path, "-o", tmp_path / "f.png")
    assert rc == 2 and "describes 150,000,007 parameters" in err, err


def test_an_embedded_spec_over_1_mb_is_refused(capfd, tmp_path):
    pytest.importorskip("matplotlib")
    model = _regression_model(tmp_path)
    spec = {m.key: m.value for m in onnx.load(str(model)).metadata_props}["nnspec_spec_yaml"]
    path = edited(model, tmp_path / "big.onnx", set_meta("nnspec_spec_yaml", spec + "#" * 2**21))
    rc, _, err = run(capfd, "plot", "fit", path, "-o", tmp_path / "f.png")
    assert rc == 2 and "its embedded spec (nnspec_spec_yaml) is 2.1 MB" in err
    rc, out, _ = run(capfd, "inspect", path)
    assert rc == 0 and "layers: not shown" in out
