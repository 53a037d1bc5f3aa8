import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

# `kind: conv2d` in a spec's YAML (block or flow style); also an optimizer's or a schedule's
# kind, so only for texts whose other kinds are known (see spec_cases.kinds_needed).
_KIND = re.compile(r"\bkind:\s*([A-Za-z_][A-Za-z0-9_]*)")


def kinds_in(text: str) -> tuple[str, ...]:
    """The layer kinds a spec's text names, in order of first use."""
    return tuple(dict.fromkeys(_KIND.findall(text)))


def layer_kinds(path: Path) -> tuple[str, ...]:
    """The layer kinds of a valid spec file (its ``layers``, not its optimizer's ``kind``)."""
    layers = yaml.safe_load(path.read_text(encoding="utf-8"))["layers"]
    return tuple(dict.fromkeys(layer["kind"] for layer in layers))


def kinds_of(spec: str) -> tuple[str, ...]:
    """The layer kinds of the shipped spec ``specs/<spec>.yaml``."""
    return layer_kinds(ROOT / "specs" / f"{spec}.yaml")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "kinds(*names): the test uses these layer kinds; in a build of nnspec without one of "
        "them (its module and registry line deleted) it is skipped, saying which",
    )


def _shipped_specs(value) -> list[Path]:
    """Shipped spec files among a test's parameters (also inside tuples and lists)."""
    if isinstance(value, (tuple, list)):
        return [p for v in value for p in _shipped_specs(v)]
    if isinstance(value, Path) and value.parent == ROOT / "specs" and value.suffix == ".yaml":
        return [value]
    return []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Skip, before its fixtures run, a test that needs a layer kind this build does not
    register: named by a ``kinds`` mark, or used by a shipped spec among its parameters.
    With every kind registered (the package as shipped) this skips nothing."""
    from nnspec.layers import LAYERS

    needed = {kind for mark in item.iter_markers("kinds") for kind in mark.args}
    params = getattr(getattr(item, "callspec", None), "params", {})
    for path in _shipped_specs(list(params.values())):
        needed.update(layer_kinds(path))
    missing = sorted(needed - set(LAYERS))
    if missing:
        pytest.skip(f"needs the layer kind(s) {', '.join(missing)}, not registered in this build")


@pytest.fixture
def root() -> Path:
    return ROOT
