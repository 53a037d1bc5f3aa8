"""docs/spec.md: generated from the schema, current, complete, and its example valid."""

from __future__ import annotations

import functools
import re

import pytest
import yaml
from conftest import ROOT

from nnspec import load_spec
from nnspec._docgen.spec_md import EXAMPLE, spec_reference
from nnspec.layers import LAYERS
from nnspec.spec.models import Spec

DOC = ROOT / "docs" / "spec.md"
SCHEMA = Spec.model_json_schema()
ROW = re.compile(r"^\| `([^`]+)` \| (.*?) \| (.*?) \| (yes|no) \| (.*) \|$")


def _models() -> dict[str, dict]:
    """Every object model of the schema by its JSON pointer: the root and each $defs entry."""
    models = {"#": SCHEMA}
    for name, definition in SCHEMA.get("$defs", {}).items():
        if "properties" in definition:
            models[f"#/$defs/{name}"] = definition
    return models


def _sections(text: str) -> dict[str, list[re.Match]]:
    """The table rows of each model's section, by the section's 'JSON Schema: `...`' pointer."""
    sections: dict[str, list[re.Match]] = {}
    rows: list[re.Match] | None = None
    for line in text.splitlines():
        if line.startswith('<a id="'):
            rows = None
        found = re.match(r"^JSON Schema: `([^`]+)`", line)
        if found:
            rows = sections.setdefault(found.group(1), [])
        elif rows is not None and (row := ROW.match(line)):
            rows.append(row)
    return sections


@functools.cache
def generated_spec_md() -> str:
    return spec_reference()


@pytest.mark.parametrize("kind", list(LAYERS))
def test_every_registered_kind_has_a_section_in_spec_md(kind):
    """The generated reference has a section for the kind: its heading, a row per field in
    the model's order, and a link from the `layers` union."""
    ref = SCHEMA["properties"]["layers"]["items"]["discriminator"]["mapping"][kind]
    model = SCHEMA["$defs"][ref.rsplit("/", 1)[-1]]
    text = generated_spec_md()
    assert f"### `layers` with `kind: {kind}`" in text
    rows = _sections(text)[ref]
    assert [row.group(1) for row in rows] == list(model["properties"])
    assert f"[`{kind}`](#layers-{kind})" in text


def test_spec_md_is_current():
    assert DOC.exists(), (
        "docs/spec.md is missing; run: python -m nnspec._docgen.spec_md > docs/spec.md"
    )
    assert DOC.read_text(encoding="utf-8") == generated_spec_md(), (
        "docs/spec.md is out of date with the spec models; regenerate it with: "
        "python -m nnspec._docgen.spec_md > docs/spec.md"
    )


def test_every_field_of_every_model_is_documented():
    sections = _sections(DOC.read_text(encoding="utf-8"))
    for pointer, model in _models().items():
        assert pointer in sections, f"no section documents {pointer}"
        keys = [row.group(1) for row in sections[pointer]]
        assert keys == list(model["properties"]), f"{pointer}: documented keys {keys}"
        required = set(model.get("required", []))
        for row in sections[pointer]:
            assert (row.group(4) == "yes") == (row.group(1) in required), row.group(0)


def test_documented_defaults_read_back_as_the_schema_defaults():
    # e.g. 1e-08 would be read by YAML 1.1 as a string; the docs must write 1.0e-08.
    sections = _sections(DOC.read_text(encoding="utf-8"))
    for pointer, model in _models().items():
        for row in sections[pointer]:
            prop = model["properties"][row.group(1)]
            if "default" in prop:
                shown = re.fullmatch(r"`(.*)`", row.group(3))
                assert shown, row.group(0)
                assert yaml.safe_load(shown.group(1)) == prop["default"], row.group(0)


def _properties(node: object, pointer: str = "#"):
    """(pointer, schema) of every property anywhere in the schema."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, prop in value.items():
                    yield f"{pointer}/properties/{name}", prop
            yield from _properties(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(value, f"{pointer}/{i}")


def test_every_spec_field_has_a_description():
    props = list(_properties(SCHEMA))
    assert len(props) > 40
    missing = [p for p, s in props if not str(s.get("description", "")).strip()]
    assert not missing, "spec fields without a description: " + ", ".join(missing)


def test_every_model_has_a_description():
    missing = [p for p, m in _models().items() if not m.get("description", "").strip()]
    assert not missing, "spec models without a docstring: " + ", ".join(missing)


def _example_in_doc() -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"^## Example\n\n```yaml\n(.*?)^```$", text, re.S | re.M)
    assert found, "docs/spec.md has no ```yaml block under '## Example'"
    return found.group(1)


def test_example_parses():
    example = _example_in_doc()
    assert example == EXAMPLE
    spec = load_spec(example)
    assert spec.name == "iris-mlp"


def test_example_is_complete():
    """The example sets every top-level key, so it shows the shape of the whole spec."""
    keys = set(yaml.safe_load(EXAMPLE))
    missing = set(SCHEMA["properties"]) - keys
    assert not missing, f"the example in nnspec/_docgen/spec_md.py leaves out: {sorted(missing)}"


def test_internal_links_resolve():
    text = DOC.read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links, "no internal links"
    assert links <= anchors, f"links to missing anchors: {sorted(links - anchors)}"
    assert len(re.findall(r'<a id="', text)) == len(anchors), "duplicate anchors"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("units", "integer > 0 or exactly `auto`"),
        ("test_fraction", "number in [0, 1)"),
        ("gamma", "number in (0, 1]"),
        ("opset", "integer in [13, 22]"),
        ("names", "list of string, or null"),
        ("kind", "exactly `dense`"),
        ("train", "mapping (see [`train`](#train))"),
    ],
)
def test_readable_types(key, expected):
    rows = [m for rows in _sections(spec_reference()).values() for m in rows]
    assert expected in [m.group(2) for m in rows if m.group(1) == key]
