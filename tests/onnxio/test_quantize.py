"""nnspec quantize: int8 (dynamic, static) and float16 copies measured against float32 on the
model's test split or --data, the refusal above --max-drop (exit 3, nothing written), and
inspect's report of it."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import ROOT

from nnspec.cli import main
from nnspec_runtime import Model


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("q")
    assert (
        main(["train", str(ROOT / "specs" / "iris.yaml"), "-o", str(tmp / "iris.onnx"), "-q"]) == 0
    )
    return tmp / "iris.onnx"


def _quantization(path) -> dict:
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    return json.loads(meta["nnspec_quantization"])


@pytest.mark.parametrize("flag", ["--int8", "--fp16"])
def test_quantize_measures_on_the_test_split_and_records_it(iris, tmp_path, capfd, flag):
    out = tmp_path / "q.onnx"
    assert main(["quantize", str(iris), "-o", str(out), flag]) == 0
    printed = capfd.readouterr().out
    q = _quantization(out)
    assert q["kind"] == flag[2:] and q["measured_on"] == "the test split of built-in iris"
    assert q["rows"] == 30 and q["delta"]["labels_changed"] == 0
    acc = q["delta"]["accuracy"]
    assert acc["float32"] == pytest.approx(29 / 30) and acc["delta"] == 0.0
    assert 0 < q["delta"]["max_abs_diff"] < 0.02  # quantized: close, but not the same bits
    # The measurement, recomputed independently with the runtime.
    x = np.random.default_rng(0).normal([5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.7, 0.8], (200, 4))
    f, g = Model(iris, device="cpu").run(x), Model(out, device="cpu").run(x)
    assert np.abs(f["probabilities"] - g["probabilities"]).max() < 0.05
    assert np.mean(f["label"] == g["label"]) > 0.97
    assert "accuracy 0.9667 -> 0.9667 (delta +0.0000)" in printed and f"wrote {out}" in printed
    model = onnx.load(out)
    assert model.producer_name == "nnspec"
    ops = {n.op_type for n in model.graph.node}
    assert (
        ("DynamicQuantizeLinear" in ops or "MatMulInteger" in ops)
        if flag == "--int8"
        else ("Cast" in ops)
    )
    # float32 in and out: callers do not change.
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert main(["inspect", str(out)]) == 0
    assert f"quantized: {flag[2:]}" in capfd.readouterr().out


def test_static_int8_with_calibration(iris, tmp_path, capfd):
    out = tmp_path / "s.onnx"
    rows = ROOT / "examples" / "new_flowers.csv"
    assert main(["quantize", str(iris), "-o", str(out), "--int8", "--calibrate", str(rows)]) == 0
    q = _quantization(out)
    assert q["method"].startswith("static, QDQ, 7-bit weights per channel, calibrated on 5 rows")
    assert {n.op_type for n in onnx.load(out).graph.node} >= {"QuantizeLinear", "DequantizeLinear"}


def test_a_drop_above_max_drop_is_refused_and_nothing_written(iris, tmp_path, capfd):
    # Calibrated on setosa alone, the activation ranges miss the other classes.
    calib = tmp_path / "setosa.csv"
    calib.write_text(
        "sepal_length,sepal_width,petal_length,petal_width\n" + "5.0,3.0,1.5,0.2\n" * 20
    )
    out = tmp_path / "bad.onnx"
    code = main(["quantize", str(iris), "-o", str(out), "--int8", "--calibrate", str(calib)])
    err = capfd.readouterr().err
    assert code == 3, err
    assert "accuracy drops by" in err and "more than --max-drop 0.01; nothing written" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [calib]


def test_measured_on_data_given(iris, tmp_path, capfd):
    data = tmp_path / "held.csv"
    data.write_text(
        "sepal_length,sepal_width,petal_length,petal_width,species\n"
        "5.1,3.5,1.4,0.2,setosa\n6.7,3.1,4.7,1.5,versicolor\n6.3,3.3,6.0,2.5,virginica\n"
    )
    spec = ROOT / "specs" / "iris.yaml"
    out = tmp_path / "d.onnx"
    assert main(["quantize", str(iris), "-o", str(out), "--fp16", "--data", str(data)]) == 0
    q = _quantization(out)
    assert q["measured_on"] == str(data) and q["rows"] == 3
    assert q["delta"]["accuracy"]["float32"] == 1.0
    assert spec.exists()


def test_quantize_refuses_a_quantized_model_and_bad_flags(iris, tmp_path, capfd):
    out = tmp_path / "q.onnx"
    assert main(["quantize", str(iris), "-o", str(out), "--int8"]) == 0
    capfd.readouterr()
    assert main(["quantize", str(out), "-o", str(tmp_path / "qq.onnx"), "--int8"]) == 2
    assert "already quantized" in capfd.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["quantize", str(iris), "-o", str(out), "--int8", "--fp16"])
    assert e.value.code == 2


def _initializers(path) -> dict[str, np.ndarray]:
    return {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


@pytest.mark.parametrize("static", [False, True])
def test_int8_weights_are_7_bit_so_no_cpu_saturates(iris, tmp_path, static):
    # onnxruntime on AVX2 CPUs without VNNI adds pairs of uint8 x int8 products in int16
    # (VPMADDUBSW), saturating past 32,767: with weights in [-64, 64] a pair is at most
    # 255 * 64 * 2 = 32,640, so the quantized model computes the same on every CPU. 8-bit
    # weights changed a third of iris's test labels on such a CPU.
    from nnspec.onnxio.quantize import WEIGHT_RANGE

    out = tmp_path / "q.onnx"
    calibrate = ["--calibrate", str(ROOT / "examples" / "new_flowers.csv")] if static else []
    assert main(["quantize", str(iris), "-o", str(out), "--int8", *calibrate]) == 0
    arrays = _initializers(out)
    lo, hi = WEIGHT_RANGE
    for layer, shape in (("dense_0", (4, 10)), ("dense_1", (10, 3))):
        w = arrays[f"{layer}.weight_quantized"]
        assert w.dtype == np.int8
        w = w.astype(np.int64)
        assert w.shape == shape
        assert lo <= w.min() and w.max() <= hi, layer
        assert w.max() - w.min() > 64, layer  # the 7 bits are used, not fewer
        # Per channel: one scale and zero point per output unit (weights are (in, out)).
        assert arrays[f"{layer}.weight_scale"].shape == (shape[1],)
        assert not arrays[f"{layer}.weight_zero_point"].any()  # symmetric
    delta = _quantization(out)["delta"]
    if static:  # calibrated on 5 rows: close, not exact
        assert delta["accuracy"]["delta"] >= 0 and delta["labels_changed"] <= 1
    else:
        assert delta["labels_changed"] == 0 and delta["max_abs_diff"] < 0.02


def test_dynamic_int8_leaves_conv_in_float32(tmp_path, capfd):
    # ConvInteger has no fast CPU kernel in onnxruntime: a ConvNet's dense layers are
    # quantized, its convolutions are not.
    spec = tmp_path / "conv.yaml"
    spec.write_text(
        "spec_version: 1\nname: small-conv\ntask: classification\n"
        "data: {builtin: digits, test_fraction: 0.25}\n"
        "layers:\n"
        "  - {kind: conv2d, filters: 4, kernel_size: 3, activation: relu}\n"
        "  - {kind: flatten}\n"
        "  - {kind: dense, units: 32, activation: relu}\n"
        "  - {kind: dense, units: 10, activation: softmax}\n"
        "loss: cross_entropy\n"
        "train: {optimizer: {kind: adam, lr: 0.003}, epochs: 8, batch_size: 32, seed: 0}\n"
    )
    model, out = tmp_path / "conv.onnx", tmp_path / "conv-int8.onnx"
    assert main(["train", str(spec), "-o", str(model), "-q"]) == 0
    assert main(["quantize", str(model), "-o", str(out), "--int8", "--max-drop", "0.02"]) == 0
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert "Conv" in ops and "ConvInteger" not in ops
    assert ops.count("MatMulInteger") == 2
    q = _quantization(out)
    assert q["method"] == "dynamic, MatMul/Gemm weights in 7 bits per channel"
    assert abs(q["delta"]["accuracy"]["delta"]) <= 0.02 and q["delta"]["max_abs_diff"] < 0.1
