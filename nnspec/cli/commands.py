"""The ``nnspec`` command: validate, compile, train, predict, evaluate, inspect, schema, plot,
init, bench, quantize, completion.

User errors print one located line each and exit with code 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# pydantic searches every installed package's entry points for plugins (importlib.metadata)
# the first time a model class is built: tens of milliseconds on every command, and nnspec
# uses no plugin. Set before the spec models are imported; an explicit setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from .. import pipeline  # noqa: E402
from .._version import __version__  # noqa: E402
from ..errors import NnspecError  # noqa: E402
from .stdio import STDIN, STDIN_NAME, print_error, read_stdin_spec_text  # noqa: E402


def _load_spec(args):
    """The spec argument (``-``: standard input) with --set/--data/--target applied."""
    from .overrides import load_spec_with_overrides

    if args.spec == STDIN:
        text = read_stdin_spec_text()
        return load_spec_with_overrides(STDIN_NAME, args.overrides, args.data, args.target, text)
    return load_spec_with_overrides(args.spec, args.overrides, args.data, args.target)


def _validate(args) -> int:
    spec = _load_spec(args)
    io, rows = pipeline.resolve(spec)
    report = pipeline.check_pretrained(spec, io)  # weights that do not fit: now, not later
    from ..spec.shapes import print_summary, summary

    data = summary(spec, io, rows)
    if args.json:
        data["init"] = report.as_dict() if report else None
        data["input_encoding"] = io.encoding
        print(json.dumps(data, indent=2))
        return 0
    print_summary(data)
    if io.encoding:  # tabular data: how the first layer's inputs are made up
        print(f"input features: {io.encoding}")
    if report:
        print("\n".join(report.lines()))
    if spec.sweep is not None:  # every trial is checked too, at the path or value at fault
        from ..engines.trials import expand_trials

        trials = expand_trials(spec)
        print(f"sweep: {len(trials)} trials ({spec.sweep.method}), each a valid spec")
    print(f"{spec.source.file or args.spec}: valid")
    return 0


def _compile(args) -> int:
    from .export_options import apply_export_arguments
    from .outputs import check_outputs, spec_inputs

    spec = apply_export_arguments(_load_spec(args), args)
    check_outputs({"model": args.output}, spec_inputs(spec))
    compiled = pipeline.compile(spec, args.output, seed=args.seed)
    if compiled.init:
        print("\n".join(compiled.init.lines()))
    print(
        f"wrote {args.output}: {spec.name}, untrained (seed "
        f"{spec.train.seed if args.seed is None else args.seed}"
        f"{', init from ' + spec.init.from_ if compiled.init else ''}), "
        f"{compiled.network.param_count():,} parameters, opset {spec.export.opset}"
    )
    return 0


def _train(args) -> int:
    import shlex

    from .. import atomic
    from ..training.interrupt import TrainingInterrupted
    from .export_options import apply_export_arguments
    from .outputs import check_outputs, spec_inputs

    spec = apply_export_arguments(_load_spec(args), args)
    inputs = spec_inputs(spec, args.resume)
    check_outputs({"model": args.output, "metrics": args.metrics}, inputs)
    if args.plots:  # matplotlib missing or DIR unwritable: say so before training, not after
        from ..plots.command import prepare_plot_directory

        prepare_plot_directory(args.plots)
    try:
        result = pipeline.train(
            spec,
            progress=False if args.quiet else None,
            checkpoint_dir=args.checkpoint,
            resume=args.resume,
        )
    except TrainingInterrupted as e:
        command = ["nnspec", "train", args.spec, "-o", args.output]
        command += [f"--set={o}" for o in args.overrides]
        command += ["--data", args.data] if args.data else []
        command += ["--target", args.target] if args.target else []
        command += ["--metrics", args.metrics] if args.metrics else []
        command += ["--quiet"] if args.quiet else []
        command += ["--plots", args.plots] if args.plots else []
        command += ["--resume", str(e.directory)]
        print(f"{e}; resume with: {shlex.join(map(str, command))}", file=sys.stderr)
        return e.exit_code
    model = pipeline.export(result, args.output)
    record = pipeline.metrics_record(result, model)
    if args.metrics:
        atomic.write_text(args.metrics, json.dumps(record, indent=2) + "\n")
    if not args.quiet:
        if result.init:
            print("\n".join(result.init.lines()))
        # With --metrics -, the JSON is standard output: the summary goes to standard error.
        out = sys.stderr if args.metrics == atomic.STDOUT else sys.stdout
        _print_train_summary(result, record["parity"], args, out)
    if args.plots:
        from ..plots.command import write_plots

        lines = write_plots(args.plots, args.output, record, spec)
        if not args.quiet:
            print("\n".join(lines))
    return 0


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _print_train_summary(result, parity: dict, args, out=None) -> None:
    out = out or sys.stdout
    h = result.history
    stop = f", stopped early (best epoch {h.best_epoch})" if h.stopped_early else ""
    resumed = f", resumed from {result.resumed_from}" if result.resumed_from else ""
    print(
        f"{result.spec.name}: {h.epochs_run} epochs in {result.seconds:.2f} s{resumed}{stop}",
        file=out,
    )
    if result.metrics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
        print(f"test: {shown}", file=out)
    print(
        f"parity (onnxruntime {parity['provider']} vs NumPy, {parity['samples']} samples): "
        f"max abs err {parity['max_abs_err']:.2e}, max rel err {parity['max_rel_err']:.2e}",
        file=out,
    )
    print(f"wrote {args.output}" + (f" and {args.metrics}" if args.metrics else ""), file=out)


def _predict(args) -> int:
    from .. import atomic
    from ..data.predict_inputs import write_predictions
    from .device_options import open_model
    from .outputs import check_outputs
    from .predict_partitioned import predict_partitions, wants_partitions
    from .stdio import read_inputs_argument

    if wants_partitions(args):  # a glob, a directory, Parquet to a directory or --engine
        return predict_partitions(args)
    model_data = Path(args.model).with_name(Path(args.model).name + ".data")
    inputs = {"model": args.model, "model's data file": model_data, "input": args.input}
    check_outputs({"predictions": args.output}, inputs)
    model = open_model(args)
    if model.columns is not None:  # a tabular model: raw columns by name
        x, text = _predict_columns(model, Path(args.input))
    else:
        x = read_inputs_argument(args.input, model.feature_names, model.n_features)
        text = write_predictions(model.predict(x))
    if args.output and args.output != atomic.STDOUT:
        atomic.write_text(args.output, text)
        print(
            f"wrote {args.output}: {len(x)} rows, device {model.device} ({model.provider})",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 0


def _predict_columns(model, path: Path):
    """(the rows, the predictions' CSV) of a tabular model; a bad cell is named by the file's
    line and the column."""
    from ..data.predict_inputs import write_predictions
    from .evaluate import predict_raw_columns

    columns, pred = predict_raw_columns(model, path)
    return next(iter(columns.values())), write_predictions(pred)


def _inspect(args) -> int:
    from ..onnxio.inspect import describe, inspect_json, layer_summary, model_info
    from ..onnxio.load import load_onnx
    from ..spec.shapes import print_summary

    path = Path(args.model)
    if args.json:
        print(json.dumps(inspect_json(path), indent=2))
        return 0
    model = load_onnx(path)
    print(describe(path, model_info(path, model)))
    data, why = layer_summary(path, model)
    print()
    if data is None:
        print(f"layers: not shown: {why}")
    else:
        print_summary(data)
    return 0


def _plot(args) -> int:
    from ..plots.command import plot_command

    return plot_command(args)


def _schema(args) -> int:
    from ..spec.models import Spec

    print(json.dumps(Spec.model_json_schema(), indent=2))
    return 0


def _init(args) -> int:
    from ..atomic import check_not_input
    from .starter import write_starter

    path = Path(args.path)
    data = Path(args.from_data) if args.from_data else None
    check_not_input({"spec": path}, {"data file": data})
    facts = write_starter(path, task=args.task, data=data, target=args.target, force=args.force)
    if facts.kind == "builtin":
        source = f"built-in {facts.source} data"
    else:
        unit = "classes" if facts.task == "classification" else "target(s)"
        outputs = f"{facts.outputs} {unit}"
        source = f"{facts.source}: {facts.features} features, {outputs}; {facts.why_task}"
    print(f"wrote {path}: {facts.task}, {source}")
    print(f"next: nnspec validate {path}  (then nnspec train {path} -o model.onnx)")
    return 0


def parser() -> argparse.ArgumentParser:
    # Light (argparse only): it imports the runtime when a command runs.
    from .completion import add_parser as add_completion
    from .device_options import add_device_arguments
    from .export_options import add_export_arguments
    from .help_text import apply_help
    from .import_cmd import add_parser as add_import
    from .modelbench import add_parser as add_bench
    from .predict_partitioned import add_arguments as add_partition_arguments
    from .quantize_command import add_parser as add_quantize
    from .sweep_command import add_parser as add_sweep

    p = argparse.ArgumentParser(
        prog="nnspec",
        description="Compile declarative YAML network specs: validate, train with NumPy "
        "backprop, export to ONNX, and run the exported models.",
    )
    p.add_argument("--version", action="version", version=f"nnspec {__version__}")
    p.epilog = (
        "Run nnspec COMMAND --help for a command's description, examples and exit codes. "
        "Exit codes: 0 success, 2 bad input (a located message), 3 refused by nnspec quantize "
        "(accuracy dropped too far), 130/143 training interrupted."
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("validate", help="check a spec and print its layer/shape/parameter table")
    s.add_argument("spec", help="YAML spec file (- reads standard input)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    from .overrides import add_override_arguments

    add_override_arguments(s)
    s.set_defaults(func=_validate)

    s = sub.add_parser("compile", help="export a seeded, untrained network to ONNX")
    s.add_argument("spec", help="YAML spec file (- reads standard input)")
    s.add_argument("-o", "--output", required=True, help="path of the .onnx file to write")
    s.add_argument("--seed", type=_seed, default=None, help="weight seed (default: train.seed)")
    add_override_arguments(s)
    add_export_arguments(s)
    s.set_defaults(func=_compile)

    s = sub.add_parser("train", help="train a spec, export ONNX, check parity, print metrics")
    s.add_argument("spec", help="YAML spec file (- reads standard input)")
    s.add_argument("-o", "--output", required=True, help="path of the .onnx file to write")
    s.add_argument(
        "--metrics", help="also write the metrics as JSON to this path (-: standard output)"
    )
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    s.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="write checkpoints into DIR (created if missing): every train.checkpoint_every "
        "epochs, on SIGINT/SIGTERM (which then stop training after the current batch), and "
        "when training diverges",
    )
    s.add_argument(
        "--resume",
        metavar="DIR",
        help="continue from the checkpoint in DIR (or its checkpoint.json), written for this "
        "same spec; the result is bit-identical to an uninterrupted run. Checkpoints go on "
        "being written to DIR unless --checkpoint names another",
    )
    s.add_argument(
        "--plots",
        metavar="DIR",
        help="after training, write the plots that apply (history, fit, regions, filters, "
        "activations) as "
        'PNGs into DIR (created if missing); needs pip install "nnspec[plot]"',
    )
    add_override_arguments(s)
    add_export_arguments(s)
    s.set_defaults(func=_train)

    s = sub.add_parser("predict", help="run an exported model on a CSV or NPY file")
    s.add_argument("model", help=".onnx file written by nnspec")
    s.add_argument(
        "input",
        help="CSV (with or without a header row), Parquet or .npy of (rows, features); - reads "
        "standard input; or Parquet/CSV files to score one by one: a glob ('data/*.parquet') or "
        "a directory",
    )
    s.add_argument(
        "-o",
        "--output",
        help="CSV to write (default, or -: standard output); for several files (or a Parquet "
        "file scored to Parquet), the directory",
    )
    add_device_arguments(s)
    add_partition_arguments(s)
    s.set_defaults(func=_predict)

    s = sub.add_parser(
        "inspect", help="show an exported model's inputs, outputs, metadata and layer table"
    )
    s.add_argument("model", help=".onnx file")
    s.add_argument("--json", action="store_true", help="print the same as JSON")
    s.set_defaults(func=_inspect)

    s = sub.add_parser("schema", help="print the JSON Schema of the spec language")
    s.set_defaults(func=_schema)

    s = sub.add_parser(
        "plot",
        help="draw a training history, a regression fit, decision regions or conv filters "
        '(PNG or SVG; needs pip install "nnspec[plot]")',
    )
    from ..plots.command import add_subcommands  # argparse only: no matplotlib at start-up

    add_subcommands(s)
    s.set_defaults(func=_plot)

    s = sub.add_parser("init", help="write a commented starter spec that validates as written")
    s.add_argument("path", help="YAML spec file to write")
    s.add_argument(
        "--task",
        choices=["classification", "regression"],
        help="default: guessed from the data's target, else classification",
    )
    s.add_argument(
        "--from-data",
        metavar="FILE",
        help="a CSV with a header row or an .npz: the spec trains on it, with the input size "
        "and the classes (or outputs) read from it (default: built-in iris or mcycle data)",
    )
    s.add_argument(
        "--target",
        metavar="NAME",
        help="with --from-data: the CSV's target column (default: the last one) or the NPZ's "
        "array of targets (default: y)",
    )
    s.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    s.set_defaults(func=_init)

    add_bench(sub)
    add_import(sub)
    from .evaluate import add_parser as add_evaluate

    add_evaluate(sub)
    from ..playground.command import add_parser as add_playground  # argparse only

    add_playground(sub)
    add_sweep(sub)
    add_quantize(sub)
    add_completion(sub, p)
    apply_help(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from nnspec_runtime import DeviceError, RuntimeModelError

    p = parser()
    args = p.parse_args(argv)
    if args.command is None:  # bare `nnspec`: what it can do, not an error
        p.print_help()
        return 0
    as_json = bool(getattr(args, "json", False))
    try:
        return args.func(args)
    except NnspecError as e:
        print_error(e, as_json)
        return e.exit_code
    except (RuntimeModelError, DeviceError) as e:
        print_error(e, as_json, prefix="error: ")
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `nnspec validate big.yaml --json | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
