"""The trials of a sweep: expanding ``sweep.space`` into complete specs, checked up front.

Each trial is the spec's own YAML data, without its ``sweep`` block, with the trial's values
put in at their paths, dumped back to YAML: a complete spec that ``nnspec train`` takes as it
is. Every path and value is checked before anything trains, and a problem is reported at
the path or value of ``sweep.space`` that causes it.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import Issue, NnspecError, SpecError, format_path
from ..spec.models import Spec, parse_spec
from ..spec.sweep import MAX_TRIALS, RangeSpec
from ..spec.yamlload import load_yaml

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")
# Paths in a spec that name files, relative to the spec's directory: rewritten for a trial
# file that lives elsewhere (results/trials/), so that it still finds them.
FILE_FIELDS = (("data", "csv"), ("data", "npz"), ("init", "from"))
# What each metric needs of the task, and which way is better.
METRIC_TASKS = {
    "val_loss": ("classification", "regression"),
    "val_accuracy": ("classification",),
    "val_mse": ("regression",),
    "val_r2": ("regression",),
}
MAXIMIZED = {"val_accuracy", "val_r2"}


@dataclass(frozen=True)
class Trial:
    """One trial: ``number`` from 1, the ``values`` put in by path, the complete ``text``."""

    number: int
    values: dict[str, Any]
    text: str

    @property
    def stem(self) -> str:
        return f"{self.number:03d}"


def parse_path(key: str) -> tuple | None:
    """``"layers[0].units"`` -> ``("layers", 0, "units")``; None when not such a path."""
    out: list = []
    for piece in key.split("."):
        m = _PART.fullmatch(piece)
        if m is None:
            return None
        out.append(m[1])
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m[2]))
    return tuple(out)


def _put(data: dict, path: tuple, value) -> str | None:
    """Set ``value`` at ``path`` in ``data`` (mappings made where missing); a message when
    the path cannot be followed."""
    node = data
    for i, part in enumerate(path):
        last = i == len(path) - 1
        where = format_path(path[:i]) or "the spec"
        if isinstance(part, int):
            if not isinstance(node, list):
                return f"{where} is not a list, so [{part}] does not apply"
            if part >= len(node):
                return f"{where} has {len(node)} items, so there is no [{part}]"
            if last:
                node[part] = value
            else:
                node = node[part]
            continue
        if not isinstance(node, dict):
            return f"{where} is not a mapping, so .{part} does not apply"
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})
    return None


def _rebase_files(data: dict, source: Path, target: Path) -> None:
    """Relative file paths of ``source``'s directory, made relative to ``target``'s."""
    for section, key in FILE_FIELDS:
        block = data.get(section)
        if isinstance(block, dict) and isinstance(block.get(key), str):
            p = Path(block[key])
            if not p.is_absolute():
                block[key] = os.path.relpath(source / p, target)


def _trial_text(base: dict, spec: Spec, values: dict, number: int, total: int, target: Path):
    data = copy.deepcopy(base)
    for key, value in values.items():
        _put(data, parse_path(key), copy.deepcopy(value))
    _rebase_files(data, spec.source.base_dir, target)
    train = data.setdefault("train", {})
    if isinstance(train, dict):  # the seed written out: the trial file alone says how it ran
        train.setdefault("seed", spec.train.seed)
    shown = ", ".join(f"{k} = {v!r}" for k, v in values.items())
    head = f"# trial {number} of {total} of the sweep in {spec.source.file or '<spec>'}: {shown}\n"
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _combinations(spec: Spec) -> list[dict]:
    sweep = spec.sweep
    keys = list(sweep.space)
    if sweep.method == "grid":
        lists = [sweep.space[k] for k in keys]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*lists)]
    import numpy as np

    rng = np.random.default_rng(sweep.seed)
    out = []
    for _ in range(sweep.trials):
        row = {}
        for k in keys:
            v = sweep.space[k]
            row[k] = v.draw(rng) if isinstance(v, RangeSpec) else v[int(rng.integers(len(v)))]
        out.append(row)
    return out


def expand_trials(spec: Spec, trials_dir: Path | None = None) -> list[Trial]:
    """Every trial of ``spec.sweep``, each checked as a spec (paths, values, the rules and
    shapes), for files in ``trials_dir`` (default: the spec's own directory)."""
    from .. import pipeline

    if spec.sweep is None:
        raise SpecError([spec.source.issue((), "no sweep: block; expected one for nnspec sweep")])
    src, sweep = spec.source, spec.sweep
    target = Path(trials_dir).resolve() if trials_dir else spec.source.base_dir
    base, _ = load_yaml(src.text, src.file)
    base.pop("sweep", None)
    issues: list[Issue] = []

    if spec.task not in METRIC_TASKS[sweep.metric]:
        issues.append(
            src.issue(
                ("sweep", "metric"),
                f"{sweep.metric} is a {METRIC_TASKS[sweep.metric][0]} metric, but the task "
                f"is {spec.task}; expected one of "
                f"{', '.join(m for m, t in METRIC_TASKS.items() if spec.task in t)}",
            )
        )
    varied_fraction = "train.validation_fraction" in sweep.space
    if spec.train.validation_fraction == 0 and not varied_fraction:
        issues.append(
            src.issue(
                ("sweep", "metric"),
                f"{sweep.metric} is measured on the validation split, but "
                "train.validation_fraction is 0; expected train.validation_fraction > 0 "
                "(test metrics are never used to choose a trial)",
            )
        )
    for key, values in sweep.space.items():
        where = ("sweep", "space", key)
        path = parse_path(key)
        if path is None:
            issues.append(
                src.issue(
                    where,
                    f"expected a path into the spec such as train.optimizer.lr or "
                    f"layers[0].units, got {key!r}",
                    at_key=True,
                )
            )
            continue
        if path[0] in ("sweep", "spec_version"):
            issues.append(src.issue(where, f"{path[0]} cannot be swept", at_key=True))
            continue
        if isinstance(values, RangeSpec) and sweep.method == "grid":
            issues.append(
                src.issue(
                    where,
                    "a range {low, high} is drawn from by method: random; a grid takes a "
                    "list of values",
                )
            )
            continue
        probes = values
        if isinstance(values, RangeSpec):  # its ends, as drawn values would be
            ends = (values.low, values.high)
            probes = [int(round(v)) if values.integer else v for v in ends]
        for i, value in enumerate(probes):
            at = (*where, i) if isinstance(values, list) else where
            data = copy.deepcopy(base)
            problem = _put(data, path, value)
            if problem:
                issues.append(src.issue(where, f"{problem}; expected a path that exists", True))
                break
            try:
                parse_spec(yaml.safe_dump(data, sort_keys=False), src.file)
            except SpecError as e:
                wrong = "; ".join(f"{format_path(x.path)}: {x.message}" for x in e.issues)
                issues.append(src.issue(at, f"the value {value!r} gives an invalid spec: {wrong}"))
    if issues:
        raise SpecError(issues)

    combos = _combinations(spec)
    if len(combos) > MAX_TRIALS:
        raise SpecError(
            [
                src.issue(
                    ("sweep", "space"),
                    f"the grid has {len(combos):,} combinations; expected at most "
                    f"{MAX_TRIALS:,} (use method: random with trials: N)",
                )
            ]
        )
    info = None
    if not any(k.startswith(("data.", "input.", "task")) for k in sweep.space):
        info = pipeline.data_info(spec)  # read once: the trials share the data
    trials = []
    for n, values in enumerate(combos, 1):
        text = _trial_text(base, spec, values, n, len(combos), target)
        try:
            trial_spec = parse_spec(text, str(target / f"{n:03d}.yaml"))
            pipeline.resolve(trial_spec, info)
        except NnspecError as e:  # a spec rule, a shape, or its data (a file not found)
            shown = ", ".join(f"{k} = {v!r}" for k, v in values.items())
            wrong = str(e)
            if isinstance(e, SpecError):
                wrong = "; ".join(f"{format_path(x.path)}: {x.message}" for x in e.issues)
            issues.append(src.issue(("sweep", "space"), f"trial {n} ({shown}): {wrong}"))
        trials.append(Trial(n, values, text))
    if issues:
        raise SpecError(issues)
    return trials


def trial_metric(history, metric: str) -> float | None:
    """The trial's value of ``metric``: at the best epoch when early stopping restored it,
    else at the last epoch (the weights that were kept)."""
    epochs = history.epochs
    if not epochs:
        return None
    row = epochs[history.best_epoch - 1] if history.best_epoch else epochs[-1]
    value = row.get(metric)
    return None if value is None or value != value else float(value)


def better(a: float, b: float, metric: str) -> bool:
    """Whether ``a`` beats ``b`` on ``metric``."""
    return a > b if metric in MAXIMIZED else a < b


def value_text(value: Any) -> str:
    """A value as one line of YAML flow style (0.01, [10, 10], {kind: adam})."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("...").strip()


def rebase_trial_text(text: str, source: Path, target: Path) -> str:
    """A trial's text with its relative file paths (written for ``source``'s directory)
    made relative to ``target``'s; its comment lines kept."""
    head = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    data, _ = load_yaml(text, None)
    _rebase_files(data, Path(source).resolve(), Path(target).resolve())
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
