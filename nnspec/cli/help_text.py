"""Each subcommand's ``--help``: a paragraph on what it does, examples and its exit codes.

One table, applied to the parser after every subcommand is added (``apply_help``), so that a
subcommand's text sits in one place; a subcommand that already has a description and an epilog
of its own (``nnspec quantize``) keeps them. ``tests/cli/test_cli_conventions.py`` checks that
every subcommand has all three.
"""

from __future__ import annotations

import argparse

_INPUT = "  2    bad input: a located message (file:line:col, YAML path), no traceback"

HELP: dict[str, tuple[str, list[str], list[str]]] = {
    # name: (description, examples, exit codes beyond 0)
    "validate": (
        "Check a spec without training: the YAML, every field, the cross-field rules and the "
        "shape of every layer, then print the layer table (kind, output shape, parameters, "
        "trainable) and the totals. An opset that the installed onnx or onnxruntime cannot "
        "handle, and a network too big for this machine's (or container's) memory, are "
        "refused here. SPEC may be - to read the spec from standard input.",
        [
            "nnspec validate specs/iris.yaml",
            "nnspec validate specs/alexnet.yaml --json | jq .total_params",
            "cat specs/iris.yaml | nnspec validate -",
        ],
        [_INPUT],
    ),
    "compile": (
        "Build a seeded, untrained network from a spec and export it to ONNX, checked against "
        "the NumPy network in onnxruntime; with data, the standardization is fitted on the "
        "training split. --opset or --target-onnxruntime choose the file's opset and IR "
        "version for an older onnxruntime. SPEC may be -.",
        [
            "nnspec compile specs/dbn.yaml -o dbn.onnx",
            "nnspec compile specs/lenet.yaml -o lenet.onnx --target-onnxruntime 1.17",
        ],
        [_INPUT],
    ),
    "train": (
        "Train a spec with NumPy backpropagation, export the ONNX model, check that onnxruntime "
        "reproduces the NumPy network (rtol 1e-4, atol 1e-5) and print the test metrics. "
        "Nothing is written when the check fails. With --checkpoint, Ctrl-C or SIGTERM stop "
        "after the current batch and save a checkpoint to resume from. SPEC may be -.",
        [
            "nnspec train specs/iris.yaml -o iris.onnx --metrics iris-metrics.json",
            "nnspec train specs/digits.yaml -o digits.onnx --checkpoint ckpt",
            "nnspec train specs/digits.yaml -o digits.onnx --resume ckpt",
        ],
        [
            _INPUT + "; also a failed parity check",
            "  130  interrupted by SIGINT (Ctrl-C); a checkpoint was written with --checkpoint",
            "  143  stopped by SIGTERM; likewise",
        ],
    ),
    "predict": (
        "Run an exported model in onnxruntime on new rows and write CSV: a label column and one "
        "p_<class> column per class, or the target columns for regression. INPUT is a CSV "
        "(with a header, columns are picked by feature name) or a .npy array, or - to read "
        "either from standard input.",
        [
            "nnspec predict iris.onnx examples/new_flowers.csv -o predictions.csv",
            "nnspec predict dbn.onnx rows.npy --device cuda",
            "cat examples/new_flowers.csv | nnspec predict iris.onnx -",
        ],
        [_INPUT + "; also a device that cannot be used (--device cuda without CUDA)"],
    ),
    "inspect": (
        "Show what an .onnx file holds: graph, producer, IR version and opset (and the oldest "
        "onnxruntime that runs it), model version, parameters, inputs, outputs, quantization "
        "and its measured accuracy delta, the metadata nnspec wrote (spec, test metrics, "
        "parity errors), and the layer table of its embedded spec.",
        ["nnspec inspect iris.onnx", "nnspec inspect lenet-int8.onnx --json"],
        [_INPUT],
    ),
    "schema": (
        "Print the JSON Schema of the spec language, for editors (yaml-language-server) and "
        "other tools; the same as the nnspec/schema.json that ships in the package.",
        ["nnspec schema > spec.schema.json"],
        [],
    ),
    "plot": (
        "Draw a training history (from a metrics file), a regression fit, decision regions or "
        "a ConvNet's filters (from a model) as PNG or SVG; needs the plot extra "
        '(pip install "nnspec[plot]").',
        [
            "nnspec plot history iris-metrics.json -o iris-history.png",
            "nnspec plot filters lenet.onnx -o lenet-filters.png",
        ],
        [_INPUT + "; also matplotlib missing"],
    ),
    "init": (
        "Write a commented starter spec that validates and trains as written: for a CSV (with "
        "a header) or an NPZ of your own, the input size and the classes or outputs are read "
        "from it; without --from-data, for built-in iris (or mcycle with --task regression).",
        [
            "nnspec init flowers.yaml --from-data nnspec/data/datasets/iris.csv",
            "nnspec init reg.yaml --task regression",
        ],
        [_INPUT + "; also PATH exists (use --force)"],
    ),
    "bench": (
        "Time an exported model in onnxruntime: samples per second and latency percentiles per "
        "batch size, through Model.run (NumPy in and out, inputs checked) or, with "
        "--iobinding, with inputs and outputs kept on the device.",
        [
            "nnspec bench dbn.onnx --device cpu --batch 1 256 4096",
            "nnspec bench dbn.onnx --device cuda --iobinding --json",
        ],
        [_INPUT + "; also a device that cannot be used"],
    ),
    "evaluate": (
        "Score an exported model on labelled rows (CSV, Parquet for tabular models, or NPZ): "
        "accuracy or R² and the loss, run in onnxruntime through the runtime.",
        ["nnspec evaluate iris.onnx nnspec/data/datasets/iris.csv"],
        [_INPUT],
    ),
    "import": (
        "Write a spec that reproduces an ONNX model (PyTorch's exporters, skl2onnx, nnspec's "
        "own), with its weights beside it, checked against the model in onnxruntime before "
        "anything is written.",
        [
            "nnspec import mlp.onnx -o mlp.yaml",
            "nnspec import logits.onnx -o clf.yaml --task classification --classes a,b,c",
        ],
        [_INPUT + "; also a model whose nodes nnspec cannot express, or a failed check"],
    ),
    "playground": (
        "Start a local web app on 127.0.0.1 where a spec is edited with live validation (the "
        "CLI's own messages) and trained on the Playground's 2-D sets, iris or mcycle, with "
        "the loss, decision regions and hidden units drawn each epoch; the spec and the ONNX "
        "model (parity-checked) download from the page. Needs the ui extra.",
        ["nnspec playground", "nnspec playground specs/iris2d.yaml --port 8765 --no-browser"],
        [_INPUT + "; also a port in use, or the ui extra missing"],
    ),
    "sweep": (
        "Train every trial of the spec's sweep: block (a grid, or random trials from a seed), "
        "each written as a complete spec under OUT/trials/, on a local process pool or a Dask "
        "cluster; write OUT/summary.csv (the varied values, the validation metric, the time) "
        "and a plot, and export the best trial's model with its parity check. Trials already "
        "done are kept on a rerun; a failed or diverged trial is recorded and the sweep goes on.",
        [
            "nnspec sweep examples/iris-sweep.yaml -o results/",
            "nnspec sweep examples/iris-sweep.yaml -o results/ --engine dask --workers 2",
        ],
        [_INPUT, "  130  interrupted: the trials already done are kept for the rerun"],
    ),
    "completion": (
        "Print a shell completion script for nnspec's subcommands and options. Add "
        'eval "$(nnspec completion bash)" to ~/.bashrc, or eval "$(nnspec completion zsh)" '
        "to ~/.zshrc.",
        ["nnspec completion bash > ~/.local/share/bash-completion/completions/nnspec"],
        [],
    ),
}


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal; the examples and exit codes kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def epilog(examples: list[str], codes: list[str]) -> str:
    lines = ["examples:", *(f"  {e}" for e in examples), "", "exit codes:", "  0    success"]
    return "\n".join(lines + codes)


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def apply_help(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand its description, examples and exit codes from ``HELP``."""
    for name, sub in subparsers(parser).items():
        if name not in HELP or (sub.description and sub.epilog):
            continue
        description, examples, codes = HELP[name]
        sub.description = sub.description or description  # a subcommand's own text wins
        sub.epilog = epilog(examples, codes)
        sub.formatter_class = HelpFormatter
