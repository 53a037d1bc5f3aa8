"""The declared floors are the ones the floors job tests: every ``>=`` floor of nnspec's and
nnspec-runtime's requirements (base, cpu, test, plot) is pinned in .ci/floors.txt at the same
version, and nothing else is; nnspec requires nnspec-runtime at exactly its own version."""

from __future__ import annotations

import re
from importlib import metadata

from conftest import ROOT

_REQ = re.compile(
    r"^(?P<name>[A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(?P<spec>[^;]*)(;\s*(?P<marker>.*))?$"
)
# gpu: onnxruntime-gpu, not on this machine
EXTRAS_TESTED = {None, "cpu", "test", "plot", "quantize"}
# Floors declared but not pinned in floors.txt (none now: pandas, pyarrow and scikit-learn
# are pinned since an unpinned pyarrow 26 needs NumPy 2 at import).
NOT_YET_FLOORED: set[str] = set()


def _norm(version: str) -> str:
    parts = version.split(".")
    while len(parts) > 1 and parts[-1] == "0":
        parts.pop()
    return ".".join(parts)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared_floors() -> dict[str, str]:
    floors: dict[str, str] = {}
    for dist in ("nnspec", "nnspec-runtime"):
        for req in metadata.requires(dist) or []:
            m = _REQ.match(req.strip())
            assert m, req
            extra = re.search(r'extra\s*==\s*"([^"]+)"', m.group("marker") or "")
            if (extra.group(1) if extra else None) not in EXTRAS_TESTED:
                continue
            floor = re.search(r">=\s*([0-9][0-9.]*)", m.group("spec"))
            if floor and _canonical(m.group("name")) not in NOT_YET_FLOORED:
                name = _canonical(m.group("name"))
                assert floors.get(name, floor.group(1)) == floor.group(1), (name, req)
                floors[name] = floor.group(1)
    return floors


def _pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_canonical(name)] = version
    return pins


def test_floors_file_pins_exactly_the_declared_floors():
    declared = {k: _norm(v) for k, v in _declared_floors().items()}
    pinned = {k: _norm(v) for k, v in _pinned().items()}
    assert pinned == declared


def test_nnspec_requires_the_runtime_at_its_own_version():
    import nnspec
    import nnspec_runtime

    version = metadata.version("nnspec")
    assert version == metadata.version("nnspec-runtime") == nnspec.__version__
    assert nnspec_runtime.__version__ == version
    assert f"nnspec-runtime=={version}" in (metadata.requires("nnspec") or [])
    # No vendored copy: the nnspec distribution's files hold no nnspec_runtime package.
    files = metadata.files("nnspec") or []
    assert not [f for f in files if str(f).startswith("nnspec_runtime/")]


def test_onnxruntime_comes_only_from_the_extras():
    base = [r for r in metadata.requires("nnspec-runtime") or [] if "extra ==" not in r]
    assert not [r for r in base if r.startswith("onnxruntime")]
    cpu = [r for r in metadata.requires("nnspec-runtime") or [] if 'extra == "cpu"' in r]
    gpu = [r for r in metadata.requires("nnspec-runtime") or [] if 'extra == "gpu"' in r]
    assert cpu and all(r.startswith("onnxruntime>=") for r in cpu)
    assert gpu and all(r.startswith("onnxruntime-gpu") for r in gpu)
