"""``nnspec quantize``: int8 (onnxruntime's dynamic or static quantization) and float16 copies of
an exported model, each measured against the float32 model before it is written.

The measurement runs both models in onnxruntime (CPU) on held-out data: the model's own test
split when its embedded spec names data that can be loaded here (else its validation split),
else the ``data`` file given. It records the accuracy (classification) or R² (regression) of
both, their difference, and the largest difference of a probability (or prediction) in the new
model's metadata (``nnspec_quantization``). A drop of more than ``max_drop`` is refused: nothing
is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from .. import atomic
from ..errors import DataError, NnspecError
from .read import ModelContents, read_model


class QuantizationRefused(NnspecError):
    """The quantized model lost more accuracy (or R²) than allowed; exit code 3."""

    exit_code = 3


@dataclass
class HeldOut:
    x: np.ndarray  # (rows, *input shape), raw values as the model takes them
    y: np.ndarray  # class indices in the model's class order (rows,), or targets (rows, outputs)
    where: str  # "the test split of built-in iris", "data.csv"


def _held_out(contents: ModelContents, data: Path | None) -> HeldOut:
    from .. import pipeline
    from ..data import core as datamod

    task = contents.metadata.get("nnspec_task")
    if data is None:
        spec = contents.spec()
        if spec.data is None:
            raise DataError(
                f"{contents.path}: its spec names no data to measure the quantized model on; "
                "expected --data FILE (a CSV with the feature and target columns, or an NPZ "
                "with x and y)"
            )
        try:
            dataset = pipeline.load_data(spec, base=contents.path.resolve().parent)
        except NnspecError as e:
            raise DataError(
                f"{contents.path}: the data its spec names cannot be read here ({e}); expected "
                "--data FILE"
            ) from None
        splits = pipeline.split_data(spec, dataset)
        part, name = (splits.test, "test") if splits.test is not None else (splits.val, "val")
        if part is None:
            raise DataError(
                f"{contents.path}: its spec holds out no test or validation split; expected "
                "--data FILE with held-out rows"
            )
        source = getattr(spec.data, "builtin", None)
        what = f"built-in {source}" if source else "its spec's data"
        return HeldOut(part.x, part.y, f"the {name} split of {what}")
    features = contents.names("feature_names")
    targets = contents.names("target_names") or []
    if data.suffix.lower() == ".npz":
        dataset = datamod.load_npz(data, "x", "y", task)
    else:
        dataset = datamod.load_csv(
            data, targets[0] if len(targets) == 1 else targets, features, task
        )
    y = dataset.y
    classes = contents.names("class_names")
    if task == "classification" and classes and dataset.info.class_names:
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(dataset.info.class_names) - set(index))
        if unknown:
            raise DataError(
                f"{data}: classes {unknown} are not the model's; expected some of {classes}"
            )
        y = np.array([index[dataset.info.class_names[i]] for i in y], np.int64)
    shape = tuple(json.loads(contents.metadata.get("nnspec_input_shape", "[]"))) or None
    x = dataset.x.reshape((len(dataset.x), *shape)) if shape else dataset.x
    return HeldOut(np.asarray(x, np.float32), y, str(data))


def _quantization():
    """onnxruntime's quantization package, or an error naming the extra that completes it."""
    try:
        from onnxruntime import quantization
    except ImportError as e:
        raise NnspecError(
            f"nnspec quantize: onnxruntime's quantizer cannot be imported ({e}): it needs "
            "packages that onnxruntime does not install itself; expected pip install "
            '"nnspec[quantize]" (ml_dtypes, sympy)'
        ) from None
    return quantization


# Weights are quantized to 7 bits ([-64, 64], reduce_range) in every int8 mode. Why: on x86
# CPUs with AVX2 but no VNNI, onnxruntime multiplies uint8 activations by int8 weights with
# VPMADDUBSW, which adds pairs of products in int16 and saturates past 32,767; with 8-bit
# weights a pair reaches 255 * 127 * 2 = 64,770, and the model's answers change on those
# CPUs alone (iris, dynamic int8 with 8-bit weights: accuracy 0.97 -> 0.67 on an AVX2 EPYC,
# unchanged on an AVX-512 VNNI one). With 7 bits a pair is at most 255 * 64 * 2 = 32,640:
# the model computes the same on every CPU, so what quantize_model measures here holds where
# it is deployed. Per-channel scales (one per output unit or filter) win back most of the
# bit: iris's largest probability difference is 0.005 with them, 0.018 without.
WEIGHT_RANGE = (-64, 64)
# Dynamic quantization leaves Conv in float32: onnxruntime's ConvInteger has no fast CPU
# kernel (LeNet at batch 256: 24-37 ms against 8 ms in float32), and a ConvNet's weights are
# mostly in its dense layers, which are quantized (LeNet: 0.18 -> 0.07 MiB).
DYNAMIC_OPS = ["MatMul", "Gemm"]


def _int8_dynamic(src: Path, dst: Path) -> None:
    q = _quantization()
    QuantType, quantize_dynamic = q.QuantType, q.quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=DYNAMIC_OPS,
    )


class _Reader:
    """onnxruntime's CalibrationDataReader: the calibration rows in batches of 64."""

    def __init__(self, name: str, x: np.ndarray):
        self._batches = iter([{name: x[i : i + 64]} for i in range(0, len(x), 64)])

    def get_next(self):
        return next(self._batches, None)


def _int8_static(src: Path, dst: Path, calibration: np.ndarray) -> None:
    q = _quantization()
    QuantFormat, QuantType, quantize_static = q.QuantFormat, q.QuantType, q.quantize_static

    quantize_static(
        str(src),
        str(dst),
        _Reader("input", calibration),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,  # 7-bit weights, as for dynamic (WEIGHT_RANGE)
    )


def _fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # keep_io_types: float32 in and out, so that callers (and nnspec_runtime) do not change.
    return convert_float_to_float16(model, keep_io_types=True)


def _calibration_rows(path: Path, contents: ModelContents) -> np.ndarray:
    from ..data.predict_inputs import read_inputs

    shape = tuple(json.loads(contents.metadata.get("nnspec_input_shape", "[]")))
    n = int(np.prod(shape)) if shape else None
    x = read_inputs(path, contents.names("feature_names"), n)
    return np.asarray(x.reshape((len(x), *shape)) if shape else x, np.float32)


def _run(model_bytes: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    from nnspec_runtime import Model

    return Model(model_bytes, device="cpu").run(x)


def _measure(task: str, float_out: dict, quant_out: dict, y: np.ndarray) -> dict:
    if task == "classification":
        accuracy = {
            k: float(np.mean(out["label"] == y)) for k, out in (("f", float_out), ("q", quant_out))
        }
        diff = np.abs(float_out["probabilities"] - quant_out["probabilities"])
        return {
            "accuracy": {
                "float32": accuracy["f"],
                "quantized": accuracy["q"],
                "delta": accuracy["q"] - accuracy["f"],
            },
            "labels_changed": int(np.sum(float_out["label"] != quant_out["label"])),
            "max_abs_diff": float(diff.max(initial=0.0)),
        }
    y = np.asarray(y, np.float64).reshape(len(y), -1)

    def r2(pred):
        pred = np.asarray(pred, np.float64).reshape(y.shape)
        total = np.sum((y - y.mean(axis=0)) ** 2)
        return float(1 - np.sum((y - pred) ** 2) / total) if total > 0 else float("nan")

    f, q = r2(float_out["prediction"]), r2(quant_out["prediction"])
    diff = np.abs(float_out["prediction"] - quant_out["prediction"])
    return {
        "r2": {"float32": f, "quantized": q, "delta": q - f},
        "max_abs_diff": float(diff.max(initial=0.0)),
    }


def _topological(graph: onnx.GraphProto) -> None:
    """Order the nodes so that each comes after those it reads from (the float16 converter
    puts its input Casts last, which the ONNX checker refuses)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        left = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                left.append(node)
        if len(left) == len(pending):
            raise NnspecError(
                f"the converted graph has a cycle or a missing input at {left[0].name}"
            )
        pending = left
    copies = [onnx.NodeProto.FromString(n.SerializeToString()) for n in ordered]
    del graph.node[:]
    graph.node.extend(copies)


def _finish(model: onnx.ModelProto, producer: tuple[str, str]) -> onnx.ModelProto:
    """The IR version the opsets need (onnx writes its newest, which onnxruntime may refuse);
    nodes in order; nnspec as the producer (the quantizer writes its own name)."""
    default = [o for o in model.opset_import if o.domain in ("", "ai.onnx", "ai.onnx.ml")]
    model.ir_version = helper.find_min_ir_version_for(default)
    _topological(model.graph)
    model.producer_name, model.producer_version = producer
    return model


@contextlib.contextmanager
def _quiet_quantizer():
    """onnxruntime's quantizer logs advice ("consider pre-processing") on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_model(
    source: str | Path,
    output: str | Path,
    *,
    mode: str,
    calibrate: str | Path | None = None,
    data: str | Path | None = None,
    max_drop: float = 0.01,
) -> dict:
    """Write the ``mode`` ("int8" or "fp16") copy of the model at ``source`` to ``output``
    and return its measurement (what goes into ``nnspec_quantization``). int8 is dynamic
    (weights int8, activations quantized at run time) unless ``calibrate`` names inputs
    (CSV or .npy) for static quantization. Raises ``QuantizationRefused`` (nothing written)
    when accuracy or R² drops by more than ``max_drop``."""
    if mode not in ("int8", "fp16"):
        raise ValueError(f"mode must be 'int8' or 'fp16', got {mode!r}")
    if calibrate is not None and mode != "int8":
        raise NnspecError("--calibrate: static calibration is for --int8; --fp16 needs none")
    source, output = Path(source), Path(output)
    atomic.check_writable(output)
    contents = read_model(source)
    if "nnspec_task" not in contents.metadata:
        raise NnspecError(f"{source}: not a model written by nnspec (no nnspec_task metadata)")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in contents.model.graph.initializer):
        raise NnspecError(
            f"{source}: keeps its weights in external data; quantizing models over 2 GB is "
            "not supported"
        )
    if "nnspec_tabular" in contents.metadata:
        raise NnspecError(
            f"{source}: a tabular model (raw columns in); nnspec quantize takes models with "
            "one float32 input: quantizing tabular models is not supported yet"
        )
    if "nnspec_quantization" in contents.metadata:
        raise NnspecError(f"{source}: is already quantized; expected a float32 model")
    held = _held_out(contents, Path(data) if data else None)
    float_bytes = source.read_bytes()
    producer = (contents.model.producer_name, contents.model.producer_version)
    with tempfile.TemporaryDirectory(prefix="nnspec-quantize-") as tmp, _quiet_quantizer():
        if mode == "fp16":
            quantized = _fp16(onnx.load_from_string(float_bytes))
            method = "float16 weights and compute, float32 inputs and outputs"
        else:
            src, dst = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(float_bytes)
            if calibrate is None:
                _int8_dynamic(src, dst)
                method = "dynamic, MatMul/Gemm weights in 7 bits per channel"
            else:
                rows = _calibration_rows(Path(calibrate), contents)
                _int8_static(src, dst, rows)
                method = (
                    f"static, QDQ, 7-bit weights per channel, calibrated on {len(rows)} rows "
                    f"of {calibrate}"
                )
            quantized = onnx.load(dst)
    quantized = _finish(quantized, producer)
    task = contents.metadata["nnspec_task"]
    delta = _measure(
        task, _run(float_bytes, held.x), _run(quantized.SerializeToString(), held.x), held.y
    )
    record = {
        "kind": mode,
        "method": method,
        "measured_on": held.where,
        "rows": int(len(held.x)),
        "delta": delta,
        "max_drop": max_drop,
        "from": {"path": source.name, "sha256": _sha256(float_bytes)},
    }
    metric = "accuracy" if task == "classification" else "r2"
    drop = -delta[metric]["delta"]
    if drop > max_drop:
        if mode == "fp16":
            hint = "raise --max-drop to accept it"
        elif calibrate is None:
            hint = "try --calibrate DATA for static int8, or --fp16, or raise --max-drop"
        else:
            hint = (
                "calibrate on rows like those the model will see (every class, the whole "
                "range), try dynamic int8 (no --calibrate) or --fp16, or raise --max-drop"
            )
        raise QuantizationRefused(
            f"{source}: the {mode} model's {metric} drops by {drop:.4f} on {held.where} "
            f"({delta[metric]['float32']:.4f} -> {delta[metric]['quantized']:.4f}), more than "
            f"--max-drop {max_drop}; nothing written (expected a drop of at most {max_drop}: "
            f"{hint})"
        )
    from .lower import add_metadata, check_onnx_model

    check_onnx_model(quantized)
    add_metadata(quantized, {"quantization": record})
    data_out = quantized.SerializeToString()
    record["bytes"] = {"float32": len(float_bytes), "quantized": len(data_out)}
    add_metadata(quantized, {"quantization": record})
    atomic.write_bytes(output, quantized.SerializeToString())
    return record


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
