"""``nnspec quantize MODEL -o OUT --int8 [--calibrate DATA] | --fp16``."""

from __future__ import annotations

import argparse
import json

DESCRIPTION = """\
Write an int8 or float16 copy of an exported model, measured against the float32 model
before it is written. --int8 uses onnxruntime's dynamic quantization (int8 weights,
activations quantized at run time), or static quantization (QDQ) with --calibrate DATA;
--fp16 converts weights and compute to float16 and keeps float32 inputs and outputs, so
callers do not change. Both models run on held-out data: the model's own test split when its
spec's data can be read here, else --data. The accuracy (or R²) of each, the difference and
the largest probability (or prediction) difference are printed and written into the new
model's metadata (nnspec inspect shows them)."""

EPILOG = """\
examples:
  nnspec quantize lenet.onnx -o lenet-int8.onnx --int8
  nnspec quantize iris.onnx -o iris-int8.onnx --int8 --calibrate examples/new_flowers.csv
  nnspec quantize dbn.onnx -o dbn-fp16.onnx --fp16 --max-drop 0.005

exit codes:
  0  written
  2  bad input (a model not from nnspec, unreadable data, a path that cannot be written)
  3  refused: accuracy (or R²) dropped by more than --max-drop; nothing written"""


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def add_parser(sub) -> None:
    s = sub.add_parser(
        "quantize",
        help="write an int8 or float16 copy of a model, measured against the float32 one",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("model", help="float32 .onnx file written by nnspec")
    s.add_argument("-o", "--output", required=True, help="path of the .onnx file to write")
    kind = s.add_mutually_exclusive_group(required=True)
    kind.add_argument("--int8", action="store_true", help="int8 quantization (onnxruntime)")
    kind.add_argument("--fp16", action="store_true", help="float16 weights and compute")
    s.add_argument(
        "--calibrate",
        metavar="DATA",
        help="with --int8: static quantization calibrated on these inputs (CSV with a header, "
        "or .npy of (rows, features)); default: dynamic quantization",
    )
    s.add_argument(
        "--data",
        metavar="FILE",
        help="held-out rows to measure on (CSV with the feature and target columns, or an NPZ "
        "with x and y); default: the model's own test split",
    )
    s.add_argument(
        "--max-drop",
        type=_fraction,
        default=0.01,
        metavar="D",
        help="refuse (exit 3, nothing written) when accuracy or R² drops by more (default 0.01)",
    )
    s.add_argument("--json", action="store_true", help="print the measurement as JSON")
    s.set_defaults(func=quantize_command)


def quantize_command(args) -> int:
    from ..onnxio.quantize import quantize_model

    record = quantize_model(
        args.model,
        args.output,
        mode="int8" if args.int8 else "fp16",
        calibrate=args.calibrate,
        data=args.data,
        max_drop=args.max_drop,
    )
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    from ..onnxio.inspect import _quantization_line

    print(_quantization_line(record))
    print(f"wrote {args.output}")
    return 0
