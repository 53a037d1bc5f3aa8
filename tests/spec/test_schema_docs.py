"""The JSON Schema file (nnspec/schema.json, the one copy, shipped in the package), the prose of
every field's description (editors show it on hover), and docs/onnx.md."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re

import pytest
from conftest import ROOT

from nnspec import cli
from nnspec._docgen.onnx_md import onnx_reference
from nnspec.cli.starter import package_schema
from nnspec.layers import LAYERS
from nnspec.nn.activations import ACTIVATIONS
from nnspec.spec.models import Spec

SCHEMA = Spec.model_json_schema()
REGENERATE = "nnspec schema > nnspec/schema.json"


@pytest.fixture(scope="module")
def printed_schema() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["schema"]) == 0
    return out.getvalue()


def test_schema_file_is_what_nnspec_schema_prints(printed_schema):
    path = package_schema()
    assert path.is_file(), f"{path} is missing; regenerate it with: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == printed_schema, (
        f"{path} is out of date with the spec models; regenerate it with: {REGENERATE}"
    )
    assert json.loads(printed_schema) == SCHEMA


def test_package_ships_the_schema():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^"nnspec" = \[.*"schema\.json".*\]$', section, re.M), section


def _described(node: object, pointer: str = "#"):
    """(pointer, name, schema) of every property and every model anywhere in the schema."""
    if isinstance(node, dict):
        if "properties" in node:
            yield pointer, pointer.rsplit("/", 1)[-1], node  # a model: its docstring
            for name, prop in node["properties"].items():
                yield f"{pointer}/properties/{name}", name, prop
        for key, value in node.items():
            yield from _described(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _described(value, f"{pointer}/{i}")


def _not_prose(name: str, text: str) -> str | None:
    """Why ``text`` is not a real description of the field ``name`` (None: it is)."""
    words = re.findall(r"[A-Za-z0-9_.'-]+", text)
    if len(words) < 3:
        return f"{len(words)} word(s); expected a sentence of at least 3"
    if not text.rstrip().endswith((".", ")", "`")):
        return "does not end like a sentence"
    plain = re.sub(r"[^a-z]", "", text.lower())
    if plain in (re.sub(r"[^a-z]", "", name.lower()), "optimizerkind", "schedulekind"):
        return "only repeats the field's name"
    return None


def test_every_field_and_model_is_described_in_prose():
    found = list(_described(SCHEMA))
    assert len(found) > 80
    bad = []
    for pointer, name, schema in found:
        why = _not_prose(name, str(schema.get("description", "")))
        if why:
            bad.append(f"{pointer}: {why}: {schema.get('description', '')!r}")
    assert not bad, "descriptions that are not real prose:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("Optimizer kind.", False),
        ("units", False),
        ("Number of output units.", True),
        ("Learning rate", False),
    ],
)
def test_prose_check_itself(text, ok):
    assert (_not_prose("units", text) is None) == ok


# -- docs/onnx.md ------------------------------------------------------------------------------


@functools.cache
def generated_onnx_md() -> str:
    """onnx_reference(), computed once: it exports a few dozen tiny specs."""
    return onnx_reference()


def test_onnx_md_is_current():
    doc = ROOT / "docs" / "onnx.md"
    assert doc.exists(), (
        "docs/onnx.md is missing; run: python -m nnspec._docgen.onnx_md > docs/onnx.md"
    )
    assert doc.read_text(encoding="utf-8") == generated_onnx_md(), (
        "docs/onnx.md is out of date with the exporter; regenerate it with: "
        "python -m nnspec._docgen.onnx_md > docs/onnx.md"
    )


def test_onnx_md_covers_every_layer_kind_and_activation():
    text = (ROOT / "docs" / "onnx.md").read_text(encoding="utf-8")
    layers = text.split("## Layers", 1)[1].split("## Activations", 1)[0]
    kinds = set(re.findall(r"`\{kind: (\w+), name: x", layers))
    assert kinds == set(LAYERS), f"layer kinds without a row: {set(LAYERS) - kinds}"
    activations = set(re.findall(r"\| `activation: (\w+)` \|", text))
    assert activations == set(ACTIVATIONS)
    for needed in ("preprocess: {standardize: true}", "standardize_target", "`ArgMax`"):
        assert needed in text


@pytest.mark.parametrize("kind", list(LAYERS))
def test_every_registered_kind_has_its_rows_in_onnx_md(kind):
    """The kind's doc cases, exported, make rows of the layer table of the generated page, in
    the kind's own order, with the construct and note that the record gives."""
    section = generated_onnx_md().split("## Layers", 1)[1].split("## Activations", 1)[0]
    rows = [line for line in section.splitlines() if f"| `{{kind: {kind}, name: x" in line]
    cases = LAYERS[kind].docs
    assert len(rows) == len(cases), rows
    for case, row in zip(cases, rows, strict=True):
        construct, shown, nodes, inits, note = row.strip("|").split(" | ")
        assert construct.strip() == case.construct and shown == f"`{case.shown}`"
        assert note.strip() == " ".join(case.note.split())
        assert nodes and inits  # "none" when the export emits nothing for the layer


@pytest.mark.parametrize("kind", list(LAYERS))
def test_every_registered_kind_is_in_the_schema(kind):
    """The schema's layer union selects the kind's model by `kind`, with every field of the
    model, each described in prose."""
    items = SCHEMA["properties"]["layers"]["items"]
    ref = items["discriminator"]["mapping"][kind]
    assert {"$ref": ref} in items["oneOf"]
    model = SCHEMA["$defs"][ref.rsplit("/", 1)[-1]]
    assert model["properties"]["kind"]["const"] == kind
    assert list(model["properties"]) == list(LAYERS[kind].spec.model_fields)
    assert _not_prose(kind, model["description"]) is None, model["description"]
    for name, prop in model["properties"].items():
        assert _not_prose(name, prop.get("description", "")) is None, (name, prop)


def test_the_source_tree_holds_one_schema_file():
    tops = [d for d in ROOT.iterdir() if d.is_dir() and d.name[0] not in "._"]
    tops = [d for d in tops if d.name not in ("build", "dist")]
    copies = sorted(p.relative_to(ROOT).as_posix() for d in tops for p in d.rglob("schema.json"))
    assert copies == ["nnspec/schema.json"], copies


def test_activation_and_initializer_descriptions_follow_the_tables():
    """Field descriptions are built from the activation and initializer tables: each names
    every activation its field accepts, every initializer, and auto's rectifiers."""
    from nnspec.nn.initializers import INITIALIZERS, RECTIFIERS

    # He for the rectifiers: the flag on the activation records says which they are.
    assert set(RECTIFIERS) == {"relu", "leaky_relu"}
    mapping = SCHEMA["properties"]["layers"]["items"]["discriminator"]["mapping"]
    models = [SCHEMA["$defs"][ref.rsplit("/", 1)[-1]]["properties"] for ref in mapping.values()]
    with_activation = [props for props in models if "activation" in props]
    assert with_activation
    for props in with_activation:
        described = props["activation"]["description"]
        for name in props["activation"]["enum"]:
            assert re.search(rf"\b{name}\b", described), (name, described)
        initializer = props["initializer"]["description"]
        assert all(name in initializer for name in INITIALIZERS), initializer
        assert f"He for {'/'.join(RECTIFIERS)}, Glorot otherwise" in initializer
