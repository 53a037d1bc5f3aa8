"""``nnspec init``: a commented starter spec that validates as written.

Without data the starter trains on a built-in dataset (iris for classification, mcycle for
regression), so ``nnspec train`` works on it at once. With ``--from-data FILE`` (a CSV with a
header row, or an NPZ) the input size, the classes or number of outputs, and (unless given) the
task are read from the file, and ``data`` points at it relative to the spec.

The first line points the YAML language server (VS Code's YAML extension and other editors)
at the spec's JSON Schema, for completion, validation and hover text while editing:

- inside nnspec's own source tree, the relative path of ``nnspec/schema.json`` (the one schema
  file, committed, so right in every clone);
- anywhere else, the ``file://`` URI of the same ``schema.json`` installed inside the package
  (package data, so it is there after ``pip install``, with or without the repository). It
  stays right when the spec moves; after nnspec's environment moves, ``nnspec init --force``
  writes a new spec, or the line can be edited by hand.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..data import csv_table
from ..errors import DataError, NnspecError

SCHEMA_NAME = "schema.json"
# More distinct numeric values than this in the target makes a guessed task regression.
MAX_GUESSED_CLASSES = 20
# A class list longer than this is left out of the spec (the data holds it anyway).
MAX_LISTED_CLASSES = 50


class InitError(NnspecError):
    """A starter spec that cannot be written (the file exists, the data cannot be used)."""


@dataclass(frozen=True)
class DataFacts:
    """What the starter needs from the data: where it is and what shape it has."""

    kind: str  # "builtin", "csv" or "npz"
    source: str  # the built-in name, or the path relative to the spec
    target: str | None  # CSV: the target column; NPZ: the target array
    task: str
    rows: int | None
    features: int
    shape: tuple[int, ...] | None  # (channels, height, width) for images
    outputs: int  # classes, or regression targets
    class_names: list[str] | None
    why_task: str  # how the task was chosen, for the header comment
    # A CSV's raw columns (``nnspec/data/tabular.py``): text columns to one-hot encode,
    # numeric columns with empty cells, and columns left out (name -> why).
    categorical: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()
    feature_names: tuple[str, ...] = ()


def package_schema() -> Path:
    """The spec's JSON Schema: the one copy, ``nnspec/schema.json`` (package data)."""
    return Path(__file__).resolve().parents[1] / SCHEMA_NAME


def schema_reference(spec_path: Path) -> str:
    """What the ``$schema=`` header of a spec written at ``spec_path`` points at."""
    spec_dir = spec_path.resolve().parent
    schema = package_schema()
    source_root = schema.parents[1]
    # A source checkout has pyproject.toml beside the package; site-packages does not.
    if (source_root / "pyproject.toml").is_file() and spec_dir.is_relative_to(source_root):
        return Path(os.path.relpath(schema, spec_dir)).as_posix()
    return schema.as_uri()


def spec_name(path: Path) -> str:
    """A valid spec name from the file name: ``my model.yaml`` -> ``my-model``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-.")
    return name or "model"


# -- reading the data ---------------------------------------------------------------------------


def _guess_task(values: list[str]) -> tuple[str, str]:
    """(task, reason) from the target's values: text labels or a few integers are classes."""
    distinct = sorted(set(values))
    numbers = []
    for v in distinct:
        try:
            numbers.append(float(v))
        except ValueError:
            example = v if len(v) <= 20 else v[:17] + "..."
            return "classification", f"it holds text labels such as {example!r}"
    integral = all(math.isfinite(x) and x.is_integer() for x in numbers)
    if integral and len(distinct) <= MAX_GUESSED_CLASSES:
        return "classification", f"it holds {len(distinct)} distinct integers"
    if integral:
        why = f"{len(distinct)} distinct integers, over {MAX_GUESSED_CLASSES}"
    else:
        why = "numbers with fractions"
    return "regression", f"it holds {why}"


def _csv_target_values(path: Path, target: str | None) -> tuple[str, list[str]]:
    """(target column, its cells); the target defaults to the last column."""
    table = csv_table.read(path)
    if table.width < 2:
        raise DataError(
            f"{path}:{table.header_line}: expected at least 2 columns (features and a target), "
            f"got {table.width}"
        )
    target = target or table.header[-1]
    (j,) = table.locate([target])
    return target, [table.text(row, j) for row in table.rows]


def _csv_columns(path: Path, target: str) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(text columns to one-hot encode, numeric columns with missing cells, columns to leave
    out with why) of a CSV's feature columns: a text column of nearly one value per row (a
    name, an identifier) or over the category limit, and an empty column, are left out."""
    from ..data.csv_table import MISSING
    from ..spec.models import MAX_CATEGORIES

    table = csv_table.read(path)
    categorical, missing, left_out = [], [], []
    for j, name in enumerate(table.header):
        if name == target:
            continue
        cells = [table.text(row, j) for row in table.rows]
        present = [c for c in cells if c not in MISSING]
        if not present:
            left_out.append((name, "entirely empty"))
            continue
        if all(_finite(c) for c in present):
            if len(present) < len(cells):
                missing.append(name)
            continue
        distinct = len(set(present))
        if distinct > MAX_CATEGORIES or (distinct > 20 and distinct > len(present) // 2):
            left_out.append((name, f"text with {distinct} distinct values in {len(cells)} rows"))
        else:
            categorical.append(name)
    return categorical, missing, left_out


def _finite(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _npz_target(path: Path, target: str):
    """The array of targets of an NPZ archive."""

    from .. import untrusted

    # Through nnspec.untrusted: entries by name and size before decompressing, no pickle.
    y = untrusted.read_npz(path, str(path), DataError, keys=[target])[target]
    return y


def read_data(data: Path, spec_path: Path, task: str | None, target: str | None) -> DataFacts:
    """Sizes, classes and task of a CSV (with a header row) or NPZ file, read with the same
    loaders as training, so that what the starter says is what ``nnspec train`` will find."""
    from ..data import core as datamod

    suffix = data.suffix.lower()
    if suffix not in (".csv", ".npz"):
        raise DataError(
            f"{data}: expected a .csv file (with a header row) or an .npz archive, got "
            f"{suffix or 'a file without an extension'}"
        )
    several = 0  # columns of an NPZ's 2-D targets: several regression outputs
    if suffix == ".csv":
        target, values = _csv_target_values(data, target)
    else:
        target = target or "y"
        y = _npz_target(data, target)
        several = y.shape[1] if y.ndim == 2 and y.shape[1] > 1 else 0
        values = [str(v) for v in y.ravel().tolist()]
    if task is None:
        task, why = ("regression", f"it has {several} columns") if several else _guess_task(values)
        why = f"task guessed from {target!r}: {why} (nnspec init --task decides otherwise)"
    else:
        why = "task given with --task"
    categorical, missing, left_out, features = [], [], [], None
    if suffix == ".csv":
        categorical, missing, left_out = _csv_columns(data, target)
        plan = None
        if categorical or missing or left_out:
            from ..data.tabular import Imputation, TabularPlan

            header = csv_table.read_header(data)
            out = {name for name, _ in left_out}
            features = [h for h in header if h != target and h not in out]
            plan = TabularPlan([], categorical, impute_default=Imputation("median"))
        loaded = datamod.load_csv(data, target, features, task, plan)
    else:
        loaded = datamod.load_npz(data, "x", target, task)
    info = loaded.info
    if task == "classification" and info.outputs < 2:
        raise DataError(
            f"{data}: {target!r} holds {info.outputs} class ({', '.join(info.class_names)}); "
            "expected at least 2 classes for classification (or --task regression)"
        )
    try:
        relative = os.path.relpath(data.resolve(), spec_path.resolve().parent)
    except ValueError:  # another drive on Windows: no relative path exists
        relative = str(data.resolve())
    return DataFacts(
        kind=suffix[1:],
        source=Path(relative).as_posix(),
        target=target,
        task=task,
        rows=len(loaded.x),
        features=info.features,
        shape=info.shape,
        outputs=info.outputs,
        class_names=info.class_names,
        why_task=why,
        categorical=tuple(categorical),
        missing=tuple(missing),
        left_out=tuple(left_out),
        feature_names=tuple(features or ()),
    )


def builtin_facts(task: str) -> DataFacts:
    """The built-in dataset a starter without data trains on."""
    from ..data.core import BUILTIN_INFO

    name = "iris" if task == "classification" else "mcycle"
    info = BUILTIN_INFO[name]
    return DataFacts(
        kind="builtin",
        source=name,
        target=None,
        task=task,
        rows=None,
        features=info.features,
        shape=None,
        outputs=info.outputs,
        class_names=info.class_names,
        why_task="",
    )


# -- writing the spec ---------------------------------------------------------------------------


def _flow(value: object) -> str:
    """A value in YAML flow style, quoted where YAML would misread it (``'1'``, ``'yes'``)."""
    # Dumped inside a list: a scalar dumped alone gets YAML's "..." document-end marker.
    return yaml.safe_dump([value], default_flow_style=True, width=math.inf).strip()[1:-1]


def _lines(pairs: list[tuple[str, str]], column: int = 40) -> list[str]:
    """YAML lines with their comments lined up at ``column`` where the code leaves room."""
    out = []
    for code, comment in pairs:
        if not comment:
            out.append(code)
        elif not code.strip():  # a comment line, indented like the code it is about
            mark = f"{code}# "
            out += textwrap.wrap(comment, 100, initial_indent=mark, subsequent_indent=mark)
        elif len(code) < column - 1:
            out.append(f"{code.ljust(column - 1)} # {comment}")
        else:
            out.append(f"{code}  # {comment}")
    return out


def _layers(d: DataFacts) -> list[tuple[str, str]]:
    out_units = d.outputs
    if d.task == "classification":
        output = (
            f"  - {{kind: dense, name: output, units: {out_units}, activation: softmax}}",
            "one unit per class",
        )
    else:
        output = (
            f"  - {{kind: dense, name: output, units: {out_units}, activation: identity}}",
            "one linear unit per target",
        )
    if d.shape is not None:
        _, h, w = d.shape
        if min(h, w) >= 8:
            conv = "filters: 8, kernel_size: 3, padding: same, activation: relu"
            return [
                ("  ", "8 feature maps of the same height and width, then half of each:"),
                (f"  - {{kind: conv2d, name: conv1, {conv}}}", ""),
                ("  - {kind: maxpool2d, name: pool1, kernel_size: 2}", ""),
                ("  - {kind: flatten, name: flatten}", "images to flat features"),
                ("  - {kind: dense, name: hidden, units: 64, activation: relu}", ""),
                output,
            ]
        return [
            ("  - {kind: flatten, name: flatten}", "images to flat features"),
            ("  - {kind: dense, name: hidden, units: 64, activation: relu}", ""),
            output,
        ]
    units = 16 if d.features <= 16 else 64
    activation = "relu" if d.task == "classification" else "tanh"
    return [
        (
            f"  - {{kind: dense, name: hidden, units: {units}, activation: {activation}}}",
            "hidden layer (add more like it)",
        ),
        output,
    ]


def starter_text(path: Path, d: DataFacts, schema: str) -> str:
    """The commented starter spec for the data ``d``, to be written at ``path``."""
    name = spec_name(path)
    classification = d.task == "classification"
    shown = path.as_posix()
    header = [
        f"# yaml-language-server: $schema={schema}",
        f"# {name}: a starter nnspec spec written by `nnspec init`. Check it with",
        f"#   nnspec validate {shown}",
        "# and train it with",
        f"#   nnspec train {shown} -o {name}.onnx",
        "# Every key is described in nnspec's docs/spec.md (`nnspec schema` prints the same as",
        "# JSON Schema); editors that read the schema line above show it on hover.",
    ]
    if d.kind != "builtin":
        what = f"{d.outputs} classes" if classification else f"{d.outputs} target(s)"
        read = f"Read from {d.source}: {d.rows} rows, {d.features} features, {what}; {d.why_task}."
        header += textwrap.wrap(read, 100, initial_indent="# ", subsequent_indent="# ")
    if d.kind == "builtin":
        data = f"data: {{builtin: {d.source}, test_fraction: 0.2}}"
        data_comment = "test_fraction: held out for the final score"
        data_help = (
            "Training data, relative to this file: {csv: file.csv, target: column} (with a "
            "header row), {npz: file.npz, x: x, y: y}, or a built-in set (iris, mcycle, "
            "digits, digits28)."
        )
    elif d.kind == "csv":
        picked = f", features: {_flow(list(d.feature_names))}" if d.left_out else ""
        data = (
            f"data: {{csv: {_flow(d.source)}, target: {_flow(d.target)}{picked}, "
            "test_fraction: 0.2}"
        )
        data_comment = "paths are relative to this file"
        data_help = (
            "Training data: a CSV with a header row; the other columns are the features "
            "(list them in data.features to pick some)."
        )
    else:
        data = f"data: {{npz: {_flow(d.source)}, x: x, y: {_flow(d.target)}, test_fraction: 0.2}}"
        data_comment = "paths are relative to this file"
        data_help = "Training data: an .npz archive (loaded without pickle)."
    tabular = bool(d.categorical or d.missing or d.left_out)
    if tabular:
        size, size_comment = (
            "",
            "The input size is read from the data: one value per numeric column plus one per "
            "category of each categorical column (nnspec validate shows the sum).",
        )
    elif d.shape is not None:
        size = f"input: {{shape: {_flow(list(d.shape))}}}"
        size_comment = "one image: [channels, height, width]"
    else:
        size = f"input: {{features: {d.features}}}"
        size_comment = "values per sample; checked against the data"
    body: list[tuple[str, str]] = [
        ("spec_version: 1", "the version of the spec language"),
        (f"name: {name}", "also the ONNX graph's name"),
        (
            f"task: {d.task}",
            "class probabilities and a label" if classification else "real-valued predictions",
        ),
        ("", data_help),
        (data, data_comment),
        (size, size_comment),
    ]
    if classification and d.class_names and len(d.class_names) <= MAX_LISTED_CLASSES:
        body.append((f"classes: {_flow(d.class_names)}", "as in the data, in this order"))
    for name, why in d.left_out:
        body.append(("", f"Column {name!r} is left out of data.features: {why}."))
    if tabular:
        body.append(("preprocess:", "fitted on the training split, all inside the ONNX graph"))
        body.append(("  standardize: true", "numeric columns: zero mean, unit variance"))
        if classification is False:
            body.append(("  standardize_target: true", "undone in the ONNX"))
        if d.categorical:
            body.append(
                (
                    f"  categorical: {_flow(list(d.categorical))}",
                    "text columns: one-hot encoded over the categories seen in training",
                )
            )
            body.append(("  unknown: ignore", "an unseen category: all zeros (or: error)"))
        if d.missing:
            body.append(
                (
                    "  impute: {strategy: median}",
                    f"{', '.join(d.missing)} {'has' if len(d.missing) == 1 else 'have'} "
                    "empty cells; or mean, most_frequent, {strategy: constant, value: 0}",
                )
            )
    elif classification:
        body.append(("preprocess: {standardize: true}", "zero mean, unit variance; in the ONNX"))
    else:
        body.append(
            (
                "preprocess: {standardize: true, standardize_target: true}",
                "inputs and targets; undone in the ONNX",
            )
        )
    body.append(("layers:", "input to output; the last layer is the output"))
    body += _layers(d)
    if classification:
        body.append(("loss: cross_entropy", "for a softmax output: fused and stable"))
    else:
        body.append(("loss: mse", "mean squared error"))
    body += [
        ("train:", ""),
        ("  optimizer: {kind: adam, lr: 0.01}", "or {kind: sgd, lr: 0.1, momentum: 0.9}"),
        ("  batch_size: 32", "samples per weight update"),
        (f"  epochs: {200 if classification else 500}", "at most: early stopping may end sooner"),
        ("  seed: 0", "same spec and seed: bit-identical weights"),
        ("  validation_fraction: 0.1", "of the training split, for early stopping"),
        (
            f"  early_stopping: {{patience: {20 if classification else 50}, monitor: val_loss}}",
            "restores the best epoch's weights",
        ),
        ("export: {opset: 18}", "ONNX opset, 13 to 22"),
    ]
    return "\n".join(header + _lines(body)) + "\n"


def write_starter(
    path: Path,
    *,
    task: str | None = None,
    data: Path | None = None,
    target: str | None = None,
    force: bool = False,
) -> DataFacts:
    """Write the starter spec at ``path``, checked with the same validation as ``nnspec
    validate`` before anything is written; returns what was read from the data."""
    from .. import atomic, pipeline
    from ..spec.models import parse_spec

    if path.exists() and not force:
        raise InitError(
            f"{path}: already exists; expected a new file (nnspec init --force overwrites it)"
        )
    atomic.check_writable(path)
    if data is not None:
        facts = read_data(data, path, task, target)
    else:
        if target is not None:
            raise InitError("--target: expected together with --from-data FILE, got it alone")
        facts = builtin_facts(task or "classification")
    text = starter_text(path, facts, schema_reference(path))
    # Validated as if already at ``path`` (data paths resolve against its directory): a
    # starter that nnspec validate refused would be a bug here, not the user's mistake.
    spec = parse_spec(text, str(path))
    pipeline.resolve(spec)
    atomic.write_text(path, text)
    return facts
