"""Property test: any document, or any mutation of a shipped spec, either validates or gives
located SpecErrors; never another exception.

CI runs NNSPEC_FUZZ_EXAMPLES cases per test (default 1500, so 3000 in all); a longer run:
``NNSPEC_FUZZ_EXAMPLES=50000 pytest tests/spec/test_fuzz_specs.py``.
"""

from __future__ import annotations

import os

import yaml
from conftest import SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnspec
from nnspec.spec.models import parse_spec

EXAMPLES = int(os.environ.get("NNSPEC_FUZZ_EXAMPLES", "1500"))
KEYS = [
    "spec_version",
    "name",
    "task",
    "input",
    "data",
    "layers",
    "loss",
    "train",
    "units",
    "kind",
    "activation",
    "features",
    "optimizer",
    "lr",
    "epochs",
    "dense",
    "builtin",
    "shape",
    "filters",
    "kernel_size",
    "stride",
    "padding",
    "groups",
    "trainable",
    "init",
    "from",
    "rate",
    "size",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["dense", "softmax", "iris", "mse", "conv2d", "maxpool2d", "same", "digits28"]),
)
DOCS = st.recursive(
    SCALARS,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(KEYS), kids, max_size=5)
    ),
    max_leaves=20,
)
BASES = [yaml.safe_load(p.read_text()) for p in SPECS]


def _check(doc) -> None:
    text = yaml.safe_dump(doc)
    try:
        spec = parse_spec(text, "fuzz.yaml")
        nnspec.resolve(spec)
    except nnspec.SpecError as e:
        for issue in e.issues:
            assert issue.file == "fuzz.yaml" and str(issue).startswith("fuzz.yaml")
    except nnspec.DataError:
        pass  # a data file named by the document does not exist here


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_random_documents(doc):
    _check(doc)


def _slots(node, parent=None, key=None) -> list[tuple[object, object]]:
    """Every (container, key) in document order; the root is (None, None)."""
    out = [(parent, key)]
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        items = []
    for k, v in items:
        out += _slots(v, node, k)
    return out


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(BASES))),
    st.lists(st.tuples(st.integers(0, 50), SCALARS), max_size=3),
)
def test_mutated_shipped_specs(which, mutations):
    doc = yaml.safe_load(yaml.safe_dump(BASES[which]))
    for index, value in mutations:
        slots = _slots(doc)
        parent, key = slots[index % len(slots)]
        if parent is not None:
            parent[key] = value
    _check(doc)
