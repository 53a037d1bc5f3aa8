"""The spec reference (docs/spec.md), rendered from the JSON Schema of the spec models.

Everything in the reference except the intro and the example comes from
``Spec.model_json_schema()``: the sections, keys, types, defaults, required flags and
descriptions. A test compares docs/spec.md with ``spec_reference()``, so the two cannot drift.
Regenerate the file with::

    python -m nnspec._docgen.spec_md > docs/spec.md
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field

import yaml

# A complete spec that uses every section. Kept literally here (not read from specs/) so that the
# reference can be generated from an installed package; a test checks that it parses.
EXAMPLE = """\
# Iris: 4 measurements -> 3 species, a 4-16-3 multilayer perceptron.
spec_version: 1
name: iris-mlp
description: Iris species from sepal and petal measurements.
task: classification
input:                  # optional with data (checked against it); required without
  features: 4           # or shape: [channels, height, width] for images
  names: [sepal_length, sepal_width, petal_length, petal_width]
init: null              # or {from: pretrained.onnx}: start from a trained model's weights
classes: [setosa, versicolor, virginica]   # optional with data (checked against it)
data:                   # or {csv: iris.csv, target: species} or {npz: iris.npz, x: x, y: y}
  builtin: iris
  test_fraction: 0.2
preprocess:
  standardize: true
  standardize_target: false
layers:
  - {kind: dense, name: hidden, units: 16, activation: relu, initializer: he_uniform}
  - {kind: dense, name: output, units: 3, activation: softmax, use_bias: true, trainable: true}
loss: cross_entropy
train:
  optimizer: {kind: adam, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1.0e-8}
  lr_schedule: {kind: step, step_size: 50, gamma: 0.5}
  batch_size: 16
  epochs: 200
  seed: 0
  weight_decay: 1.0e-4
  validation_fraction: 0.1
  early_stopping: {patience: 20, monitor: val_loss, min_delta: 0.0}
  shuffle: true
  dtype: float32
export:
  opset: 18
sweep:                  # for nnspec sweep only (train ignores it): the trials to run
  method: grid          # or random, with trials: N and seed, and ranges {low, high, log}
  metric: val_loss      # a validation metric; test metrics never choose
  space:
    train.optimizer.lr: [0.003, 0.01, 0.03]
    layers[0].units: [8, 16, 32]
"""

INTRO = """\
# Spec reference

An nnspec spec is a YAML file: one mapping, whose keys are described below. This page is
generated from the JSON Schema of the spec language (`nnspec schema` prints it; editors use it
for completion and hover text), so it always matches what `nnspec validate` accepts. Do not edit
it by hand: regenerate it with

```sh
python -m nnspec._docgen.spec_md > docs/spec.md
```

Each section has one table with a row per key:

- **type**: what the value must be. Values are not coerced: `units: "10"` is an error, not 10;
  an integer is accepted where a number is expected, and `1e-4` is read as a number.
- **default**: the value used when the key is left out; `—` means the schema records none.
- **required**: whether the key must be given.

Besides the types shown here, some rules connect several keys (for example the loss must suit
the output layer's activation, and the output units must match the data's classes);
`nnspec validate` checks those and points at the offending line.
"""

_NULL = {"type": "null"}


@dataclass
class _Section:
    """One heading of the reference: an object (a table of keys) or a union of objects."""

    title: str
    anchor: str
    level: int
    path: str  # dotted key path from the root ("" for the root)
    ref: str | None = None  # "#" for the root, else the $defs name of an object section
    schema: dict = field(default_factory=dict)
    members: list[tuple[str, str]] = field(default_factory=list)  # union: (tag, anchor)
    picked_by: str | None = None  # union: the discriminator key, or None for "the key present"
    items: bool = False  # union: describes the items of a list
    note: str = ""  # union: the field's description


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts if p)


def _number(value: float, integral: bool = False) -> str:
    """A number as YAML 1.1 reads it back as a number (``1.0e-08``, never ``1e-08``).

    ``integral``: write a float without a fraction as an integer (for bounds: ``[0, 1)``).
    """
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    text = repr(value)
    if integral and value.is_integer() and "e" not in text:
        return str(int(value))
    mantissa, _, exponent = text.partition("e")
    if exponent and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text


def _yaml(value: object) -> str:
    """A default value written as YAML (flow style)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        plain = value and value.strip() == value and not re.search(r"[:#{}\[\],&*!|>'\"%@`]", value)
        return value if plain and yaml.safe_load(value) == value else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _bounds(schema: dict) -> str:
    lo, lo_incl = schema.get("minimum"), True
    if "exclusiveMinimum" in schema:
        lo, lo_incl = schema["exclusiveMinimum"], False
    hi, hi_incl = schema.get("maximum"), True
    if "exclusiveMaximum" in schema:
        hi, hi_incl = schema["exclusiveMaximum"], False
    if lo is not None and hi is not None:
        lo, hi = _number(lo, integral=True), _number(hi, integral=True)
        return f" in {'[' if lo_incl else '('}{lo}, {hi}{']' if hi_incl else ')'}"
    if lo is not None:
        return f" {'>=' if lo_incl else '>'} {_number(lo, integral=True)}"
    if hi is not None:
        return f" {'<=' if hi_incl else '<'} {_number(hi, integral=True)}"
    return ""


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


class _Reference:
    def __init__(self, schema: dict):
        self.schema = schema
        self.defs: dict[str, dict] = schema.get("$defs", {})
        self.sections: list[_Section] = []
        self.anchor_of: dict[str, str] = {}  # $defs name -> anchor of its section
        self.title_of: dict[str, str] = {}

    # -- planning: which sections, in which order ------------------------------------------

    def plan(self) -> None:
        self._plan_object("Top level", "spec", 2, "#", self.schema, "")

    def _plan_object(self, title: str, anchor: str, level: int, ref: str, obj: dict, path: str):
        self.sections.append(_Section(title, anchor, level, path, ref=ref, schema=obj))
        if ref != "#":
            self.anchor_of[ref], self.title_of[ref] = anchor, title
        for key, prop in obj.get("properties", {}).items():
            self._plan_value(f"{path}.{key}" if path else key, prop)

    def _plan_value(self, path: str, schema: dict, items: bool = False, note: str = "") -> None:
        note = note or schema.get("description", "")
        schema = self._non_null(schema)
        if "$ref" in schema:
            name = _ref_name(schema["$ref"])
            if name not in self.anchor_of and "properties" in self.defs.get(name, {}):
                title, anchor = f"`{path}`", _anchor(path)
                if anchor in {sec.anchor for sec in self.sections}:
                    # The same key under another union member (data.test of csv and of npz):
                    # the model's name tells the sections apart.
                    title, anchor = f"`{path}` ({name})", _anchor(path, name)
                self._plan_object(title, anchor, 2, name, self.defs[name], path)
        elif "oneOf" in schema and not all("$ref" in m for m in schema["oneOf"]):
            # A value that is one of several shapes (a list, or a mapping): each on its own.
            for member in schema["oneOf"]:
                self._plan_value(path, member, items, note)
        elif "oneOf" in schema:
            self._plan_union(path, schema, items, note)
        elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            self._plan_value(path, schema["items"], items=True, note=note)
        elif schema.get("type") == "object" and isinstance(
            schema.get("additionalProperties"), dict
        ):  # a mapping of names to values (impute.columns, sweep.space): the values' sections
            self._plan_value(f"{path}.<name>", schema["additionalProperties"], note=note)

    def _plan_union(self, path: str, schema: dict, items: bool, note: str) -> None:
        union = _Section(f"`{path}`", _anchor(path), 2, path, items=items, note=note)
        self.sections.append(union)
        picked_by = schema.get("discriminator", {}).get("propertyName")
        union.picked_by = picked_by
        for name, tag in self._tags(schema):
            if name not in self.anchor_of:  # else documented already, where first met
                label = f"{picked_by}: {tag}" if picked_by else tag
                title = f"`{path}` with `{label}`"
                self._plan_object(title, _anchor(path, tag), 3, name, self.defs[name], path)
            union.members.append((tag, self.anchor_of[name]))

    def _tags(self, schema: dict) -> list[tuple[str, str]]:
        """(def name, tag) of each member of a oneOf.

        The tag is the discriminator's value, or else the first required key that not every
        member has (the key whose presence picks the member).
        """
        names = [_ref_name(m["$ref"]) for m in schema["oneOf"]]
        mapping = schema.get("discriminator", {}).get("mapping", {})
        by_ref = {_ref_name(ref): tag for tag, ref in mapping.items()}
        common = set.intersection(*(set(self.defs[n].get("properties", {})) for n in names))
        tags = []
        for name in names:
            tag = by_ref.get(name)
            if tag is None:
                own = [k for k in self.defs[name].get("required", []) if k not in common]
                tag = own[0] if own else name
            tags.append((name, tag))
        return tags

    @staticmethod
    def _non_null(schema: dict) -> dict:
        """The schema without its ``null`` alternative (an optional value)."""
        options = schema.get("anyOf")
        if options and _NULL in options and len(options) == 2:
            return next(o for o in options if o != _NULL)
        return schema

    # -- types ------------------------------------------------------------------------------

    def type_of(self, schema: dict, path: str = "") -> str:
        if "anyOf" in schema:
            options = [o for o in schema["anyOf"] if o != _NULL]
            text = " or ".join(self.type_of(o, path) for o in options)
            return f"{text}, or null" if _NULL in schema["anyOf"] else text
        if "$ref" in schema:
            name = _ref_name(schema["$ref"])
            if name in self.anchor_of:
                return f"mapping (see [{self.title_of[name]}](#{self.anchor_of[name]}))"
            return self.type_of(self.defs[name], path)
        if "oneOf" in schema and not all("$ref" in m for m in schema["oneOf"]):
            return " or ".join(self.type_of(m, path) for m in schema["oneOf"])
        if "oneOf" in schema:
            links = ", ".join(
                f"[`{tag}`](#{self.anchor_of.get(name, _anchor(path, tag))})"
                for name, tag in self._tags(schema)
            )
            key = schema.get("discriminator", {}).get("propertyName")
            how = f"picked by `{key}`" if key else "picked by which key is present"
            return f"mapping, one of: {links} ({how})"
        if "const" in schema:
            return f"exactly `{_yaml(schema['const'])}`"
        if "enum" in schema:
            return "one of: " + ", ".join(f"`{_yaml(v)}`" for v in schema["enum"])
        kind = schema.get("type")
        if isinstance(kind, list):
            return " or ".join(self.type_of({**schema, "type": k}, path) for k in kind)
        if kind in ("integer", "number"):
            return kind + _bounds(schema)
        if kind == "string":
            return self._string(schema)
        if kind == "boolean":
            return "boolean"
        if kind == "null":
            return "null"
        if kind == "array":
            return self._array(schema, path)
        if kind == "object":
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                return f"mapping of string to {self.type_of(extra, path)}"
            return "mapping"
        return "any value"

    @staticmethod
    def _string(schema: dict) -> str:
        lo, hi = schema.get("minLength"), schema.get("maxLength")
        if lo == 1 and hi is None:
            text = "non-empty string"
        elif lo and hi:
            text = f"string of {lo} to {hi} characters"
        elif lo:
            text = f"string of at least {_count(lo, 'character')}"
        elif hi:
            text = f"string of at most {_count(hi, 'character')}"
        else:
            text = "string"
        if "pattern" in schema:
            text += f" matching `{schema['pattern']}`"
        if "format" in schema:
            text += f" ({schema['format']})"
        return text

    def _array(self, schema: dict, path: str) -> str:
        items = schema.get("items")
        text = f"list of {self.type_of(items, path)}" if isinstance(items, dict) else "list"
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if lo == 1 and not hi:
            text = "non-empty " + text
        elif lo and hi:
            text += f", {lo} to {hi} items"
        elif lo:
            text += f", at least {_count(lo, 'item')}"
        elif hi:
            text += f", at most {_count(hi, 'item')}"
        if schema.get("uniqueItems"):
            text += ", without repeats"
        return text

    # -- defaults ---------------------------------------------------------------------------

    def default_of(self, schema: dict, required: bool) -> str:
        if "default" in schema:
            return f"`{_yaml(schema['default'])}`"
        if required:
            return "—"
        # A default_factory leaves no default in the schema; for a mapping whose keys are all
        # optional, leaving it out is the same as giving it empty.
        target = self._non_null(schema)
        if "$ref" in target:
            obj = self.defs.get(_ref_name(target["$ref"]), {})
            if "properties" in obj and not obj.get("required"):
                return "`{}` (all defaults)"
        return "—"

    # -- rendering --------------------------------------------------------------------------

    def render(self) -> str:
        out = [INTRO, "## Example\n", "```yaml\n" + EXAMPLE + "```\n", "## Contents\n"]
        for s in self.sections:
            indent = "  " * (s.level - 2)
            out.append(f"{indent}- [{s.title}](#{s.anchor})")
        out.append("")
        for s in self.sections:
            out.append(f'<a id="{s.anchor}"></a>\n')
            out.append(f"{'#' * s.level} {s.title}\n")
            out.append(self._union(s) if s.ref is None else self._object(s))
        return "\n".join(out).rstrip("\n") + "\n"

    def _union(self, s: _Section) -> str:
        links = ", ".join(f"[`{tag}`](#{anchor})" for tag, anchor in s.members)
        what = "Each item is a mapping" if s.items else "A mapping"
        if s.picked_by:
            how = f"{what} whose `{s.picked_by}` picks one of: {links}."
        else:
            how = f"{what} with exactly one of the keys {links}, which picks its kind."
        return (f"{_cell(s.note)}\n\n" if s.note else "") + how + "\n"

    def _object(self, s: _Section) -> str:
        obj = s.schema
        where = "`#` (the root)" if s.ref == "#" else f"`#/$defs/{s.ref}`"
        lines = []
        if obj.get("description"):
            lines += [_cell(obj["description"]), ""]
        lines += [
            f"JSON Schema: {where}",
            "",
            "| key | type | default | required | description |",
            "|---|---|---|---|---|",
        ]
        required = set(obj.get("required", []))
        for key, prop in obj.get("properties", {}).items():
            sub = f"{s.path}.{key}" if s.path else key
            lines.append(
                f"| `{key}` | {_cell(self.type_of(prop, sub))} "
                f"| {_cell(self.default_of(prop, key in required))} "
                f"| {'yes' if key in required else 'no'} "
                f"| {_cell(prop.get('description', ''))} |"
            )
        return "\n".join(lines) + "\n"


def spec_reference(schema: dict | None = None) -> str:
    """The Markdown spec reference, rendered from ``Spec.model_json_schema()``."""
    if schema is None:
        from ..spec.models import Spec

        schema = Spec.model_json_schema()
    ref = _Reference(schema)
    ref.plan()
    return ref.render()


def print_spec_md() -> int:
    """Print the reference: ``python -m nnspec._docgen.spec_md > docs/spec.md``."""
    sys.stdout.write(spec_reference())
    return 0


if __name__ == "__main__":
    raise SystemExit(print_spec_md())
