"""``nnspec train SPEC --set train.epochs=5 --data FILE --target COL``: a spec file changed from
the command line, validated like the file itself.

Each ``--set PATH=VALUE`` sets one field: PATH is dotted YAML keys with list indices
(``train.optimizer.lr``, ``layers[1].units`` or ``layers.1.units``), VALUE is read as YAML
(``5``, ``0.01``, ``sgd``, ``{kind: sgd, lr: 0.1}``, ``[a, b]``). ``--data FILE`` replaces the
spec's data source by the file (its kind from its name: .csv, .npz, .parquet), keeping the
spec's target, features and test_fraction where they apply; ``--target`` names its target
(default: the spec's, else the file's last column).
A problem with a value that came from the command line names that argument rather than a line
of the file (``--set train.epochs=0: train.epochs: expected an integer >= 1, got 0``), and
the model's metadata records the spec as trained (the file's YAML with the changes applied).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from ..errors import Issue, SpecError, format_path
from ..spec.models import Spec, SpecSource, parse_spec, read_spec_text, spec_from_data
from ..spec.yamlload import load_yaml

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def add_override_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a spec field, validated like the file (repeatable): "
        "--set train.epochs=5 --set train.optimizer.lr=0.01 --set layers[0].units=32",
    )
    p.add_argument(
        "--data",
        metavar="FILE",
        help="train on FILE instead of the spec's data (.csv with a header, .npz, .parquet "
        "or a glob of them); the spec's target, features and test_fraction apply",
    )
    p.add_argument(
        "--target",
        metavar="COL",
        help="the target column of the data (the .npz's array of targets)",
    )


def _path(text: str, arg: str) -> tuple:
    parts: list = []
    pos = 0
    for m in _PART.finditer(text):
        if m.start() != pos and text[pos : m.start()] != ".":
            break
        pos = m.end()
        key, index = m.groups()
        parts.append(int(index) if index is not None else (int(key) if key.isdigit() else key))
    if not parts or pos != len(text):
        raise _arg_error(
            arg,
            f"'{text}' is not a field path; expected keys joined by dots, "
            "with [N] for list items (train.optimizer.lr, layers[1].units)",
        )
    return tuple(parts)


def _arg_error(arg: str, message: str) -> SpecError:
    return SpecError([Issue(message, (), arg)])


def _assign(data: dict, path: tuple, value, arg: str) -> None:
    node = data
    for i, part in enumerate(path[:-1]):
        where = format_path(path[: i + 1])
        if isinstance(node, list):
            if not isinstance(part, int) or not 0 <= part < len(node):
                raise _arg_error(arg, f"{where}: no item {part} in a list of {len(node)}")
            node = node[part]
        elif isinstance(node, dict):
            if isinstance(part, int):
                raise _arg_error(arg, f"{where}: [{part}] indexes a list, but this is a mapping")
            node = node.setdefault(part, {})
            if node is None:
                node = data_set(path[: i + 1], data)
        else:
            raise _arg_error(
                arg,
                f"{where}: cannot set a key inside {type(node).__name__} "
                f"{node!r}; expected a mapping or a list",
            )
    last = path[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or not 0 <= last < len(node):
            raise _arg_error(arg, f"no item {last} in the list of {len(node)}")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise _arg_error(arg, f"cannot set {last} inside {node!r}; expected a mapping")


def data_set(path: tuple, data: dict) -> dict:
    """Replace a null at ``path`` by an empty mapping, and return it (``early_stopping: null``
    then ``--set train.early_stopping.patience=3``)."""
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = {}
    return node[path[-1]]


def _data_source(old, file: str, target: str | None) -> dict:
    """The ``data`` mapping for ``--data FILE``."""
    name = file.lower()
    old = old if isinstance(old, dict) else {}
    kind = "npz" if name.endswith(".npz") else "parquet" if ".parquet" in name else "csv"
    new: dict = {kind: str(Path(file).resolve()) if "*" not in file else file}
    if "test_fraction" in old:
        new["test_fraction"] = old["test_fraction"]
    if kind == "npz":
        for key in ("x", "y"):
            if key in old and "npz" in old:
                new[key] = old[key]
        if target:
            new["y"] = target
        return new
    chosen = target or old.get("target") or _last_column(file, kind)
    new["target"] = chosen
    if "features" in old and "npz" not in old:
        new["features"] = old["features"]
    return new


def _last_column(file: str, kind: str) -> str:
    """The target when neither --target nor the spec names one: the last column, as
    ``nnspec init`` takes it."""
    if kind == "parquet":
        from ..data.parquet import parquet_files, read_table

        return read_table(parquet_files(Path(file))[0]).column_names[-1]
    from ..data import csv_table

    header = csv_table.read_header(Path(file))
    if not header:
        raise SpecError(
            [
                Issue(
                    f"{file}: the file is empty; expected a header row and data rows",
                    (),
                    f"--data {file}",
                )
            ]
        )
    return header[-1]


def load_spec_with_overrides(
    path: str, sets: list[str], data: str | None = None, target: str | None = None
) -> Spec:
    """The spec file at ``path`` with the command line's changes, validated."""
    text = read_spec_text(path)
    if not sets and data is None and target is None:
        return parse_spec(text, str(path))
    fields, marks = load_yaml(text, str(path))
    if not isinstance(fields, dict):
        return parse_spec(text, str(path))  # the file's own error
    overrides: dict[tuple, str] = {}
    shown: list[str] = []
    for arg in sets:
        name = f"--set {arg}"
        if "=" not in arg:
            raise _arg_error(name, "expected PATH=VALUE, e.g. --set train.epochs=5")
        key, raw = arg.split("=", 1)
        where = _path(key.strip(), name)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise _arg_error(name, f"the value is not valid YAML: {e}".replace("\n", " ")) from None
        _assign(fields, where, value, name)
        overrides[where] = name
        shown.append(name)
    if data is not None:
        fields["data"] = _data_source(fields.get("data"), data, target)
        overrides[("data",)] = f"--data {data}"
        shown.append(f"--data {data}" + (f" --target {target}" if target else ""))
    elif target is not None:
        d = fields.get("data")
        if not isinstance(d, dict) or not any(k in d for k in ("csv", "npz", "parquet")):
            raise _arg_error(
                f"--target {target}",
                "applies to a csv, npz or parquet data "
                "source; the spec has none (give --data FILE too)",
            )
        d["y" if "npz" in d else "target"] = target
        overrides[("data", "y" if "npz" in d else "target")] = f"--target {target}"
        shown.append(f"--target {target}")
    effective = f"# {path}, with {' '.join(shown)}\n" + yaml.safe_dump(fields, sort_keys=False)
    return spec_from_data(fields, SpecSource(effective, str(path), marks, overrides))
