"""The editor's live validation: YAML text -> the CLI's located messages and layer table.

The spec is read by the same ``parse_spec`` and checked by the same ``pipeline.resolve`` (cross
field rules, shape inference, the memory estimate) as ``nnspec validate``, against the data
the Data panel chose; each message is the very line the CLI prints, with its line and column
for the editor's marks. The spec the playground trains is the editor's text with the panel's
data written in (``with_data``): a user's own ``data:`` section is commented out line for line
and the panel's appended at the end, so every line keeps its number and the downloaded spec
trains with ``nnspec train`` on the same data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .. import pipeline
from ..errors import Issue, NnspecError, SpecError
from ..spec.models import MAX_SPEC_BYTES, Spec, parse_spec
from ..spec.shapes import summary
from .datasets import DataChoice
from .session import MAX_EPOCHS

MAX_WIDTH = 4096  # outputs of one layer
MAX_PARAMS = 1_000_000


@dataclass
class Checked:
    """The result of checking the editor's text: ``spec`` (to train) when valid, else the
    issues; ``table`` is ``nnspec validate --json``'s summary; ``notes`` are not errors."""

    spec: Spec | None = None
    issues: list[dict] = field(default_factory=list)
    table: dict | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "ok": self.spec is not None,
            "issues": self.issues,
            "table": self.table,
            "notes": self.notes,
        }


def _issue_json(issue: Issue) -> dict:
    return {"line": issue.line, "col": issue.col, "message": issue.message, "text": str(issue)}


def _data_lines(text: str, marks) -> tuple[int, int] | None:
    """(first, last) 1-based lines of a top-level ``data:`` section in block style."""
    mark = marks.key(("data",))
    lines = text.splitlines()
    # Marks fall back to the nearest node there is: make sure this one is the data key.
    if mark is None or mark[1] != 1 or not lines[mark[0] - 1].startswith("data"):
        return None
    first = last = mark[0]
    for k in range(first, len(lines)):  # lines[k] is line k + 1
        line = lines[k]
        if line and not line[0].isspace() and not line.startswith("#"):
            break
        if line.strip():
            last = k + 1
    return first, last


def with_data(text: str, marks, choice: DataChoice) -> str:
    """``text`` with the panel's data: a ``data:`` section of its own commented out (same
    number of lines) and the panel's one-line section appended."""
    lines = text.splitlines()
    found = _data_lines(text, marks)
    if found is not None:
        first, last = found
        for k in range(first - 1, last):
            lines[k] = "# " + lines[k]
    return "\n".join(lines) + "\n" + choice.data_yaml() + "\n"


def check_text(text: str, choice: DataChoice, file: str, root: Path) -> Checked:
    """Validate the editor's ``text`` (shown as ``file`` in messages) for ``choice``."""
    out = Checked()
    size = len(text.encode("utf-8"))
    if size > MAX_SPEC_BYTES:
        out.issues.append(
            _issue_json(
                Issue(
                    f"the spec is {size / 1e6:.1f} MB; a spec is expected to be a few KB (at "
                    f"most {MAX_SPEC_BYTES // 10**6} MB)",
                    (),
                    file,
                )
            )
        )
        return out
    try:
        own = parse_spec(text, file)
        if own.data is not None and own.data != choice.data_spec():
            out.notes.append(
                "data: the playground trains on the Data panel's choice; this spec's own data "
                "section is commented out in the spec it trains and downloads"
            )
        spec = parse_spec(with_data(text, own.source.marks, choice), file)
        issues = _playground_issues(spec, choice, root)
        if issues:
            raise SpecError(issues)
        io, rows = pipeline.resolve(spec, _info(choice))
        out.table = summary(spec, io, rows)
        issues = _size_issues(spec, rows)
        if issues:
            raise SpecError(issues)
        out.spec = spec
    except SpecError as e:
        out.issues = [_issue_json(i) for i in e.issues]
    except NnspecError as e:
        out.issues = [{"line": None, "col": None, "message": str(e), "text": str(e)}]
    return out


def _size_issues(spec: Spec, rows) -> list[Issue]:
    """Playground-sized networks only: every frame runs the network over a 64 x 64 grid and
    draws its units, which a layer of a million units would turn into gigabytes a frame."""
    issues = []
    for i, row in enumerate(rows):
        width = math.prod(d for d in row.output_shape[1:])
        if width > MAX_WIDTH:
            issues.append(
                spec.source.issue(
                    ("layers", i),
                    f"({row.kind}): {width:,} outputs; the playground draws every unit over "
                    f"its picture and takes at most {MAX_WIDTH:,} a layer (nnspec train has "
                    "no such limit)",
                )
            )
    total = sum(r.params for r in rows)
    if total > MAX_PARAMS and not issues:
        issues.append(
            spec.source.issue(
                ("layers",),
                f"{total:,} parameters; the playground trains at most {MAX_PARAMS:,} (nnspec "
                "train has no such limit)",
            )
        )
    return issues


def _info(choice: DataChoice):
    from .datasets import load_choice

    return load_choice(choice).info


def _playground_issues(spec: Spec, choice: DataChoice, root: Path) -> list[Issue]:
    """What the playground refuses beyond what the CLI does: the wrong task for the data,
    tabular preprocessing, an endless run, a pretrained model outside the folder it serves."""
    src, issues = spec.source, []
    if spec.task != choice.task:
        issues.append(
            src.issue(
                ("task",),
                f"the Data panel's {choice.name} is a {choice.task} set; expected task: "
                f"{choice.task}, got {spec.task}",
            )
        )
    if pipeline.tabular_plan(spec) is not None:
        key = "categorical" if spec.preprocess.categorical else "impute"
        issues.append(
            src.issue(
                ("preprocess", key),
                f"preprocess.{key} is for tables of raw columns; the playground's data are "
                "numeric points, already complete: expected no categorical or impute here "
                "(train a tabular spec with nnspec train)",
            )
        )
    if spec.train.epochs > MAX_EPOCHS:
        issues.append(
            src.issue(
                ("train", "epochs"),
                f"the playground trains at most {MAX_EPOCHS:,} epochs a run; got "
                f"{spec.train.epochs:,} (nnspec train has no such limit)",
            )
        )
    if spec.init is not None:
        target = (src.base_dir / spec.init.from_).resolve()
        if not target.is_relative_to(root.resolve()):
            issues.append(
                src.issue(
                    ("init", "from"),
                    f"{spec.init.from_} is outside the folder the playground serves "
                    f"({root}); expected a model inside it",
                )
            )
    return issues
