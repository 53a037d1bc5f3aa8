"""The package's import graph: no circles (function-level imports count), and the numerics
(``nn``, ``layers``) never reach up into training, export, the orchestrator or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = {"nnspec": ROOT / "nnspec", "nnspec_runtime": ROOT / "runtime" / "nnspec_runtime"}
# Stages the numerics sit below: an arrow into one of these from nn/ or layers/ points up.
ABOVE_NUMERICS = (
    "nnspec.training",
    "nnspec.onnxio",
    "nnspec.pipeline",
    "nnspec.cli",
    "nnspec.plots",
    "nnspec.data",
)


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(pkg, root, p): p for pkg, root in PACKAGES.items() for p in root.rglob("*.py")
    }


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks: annotations only, never run."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for inner in node.body:
                lines.update(range(inner.lineno, inner.end_lineno + 1))
    return lines


def imports(name: str, path: Path, known: set[str], typing: bool = False) -> set[str]:
    """The package modules that module ``name`` imports anywhere in its body (module level
    or inside functions); ``typing`` also counts ``if TYPE_CHECKING:`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set() if typing else _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[: len(up) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            # The longest known module the name starts with (``a.b.c`` of ``a.b.c.func``).
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph(typing: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {n: imports(n, p, known, typing) for n, p in modules.items()}
    # A package's __init__ runs before any of its modules: importing ``a.b`` imports ``a``.
    # That edge is how Python works, not a design arrow, so it is left out of the circles.
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges into a package's ``__init__`` that only re-exports its own modules are the
    package's face, not a dependency of its modules; drop a package's own modules' edges to it."""
    return {
        n: {t for t in ts if not (n.startswith(t + ".") and t in graph)} for n, ts in graph.items()
    }


def test_no_import_circles():
    cycles = _cycles(_without_package_inits(_graph()))
    assert not cycles, f"import circles: {cycles}"


def test_the_numerics_import_nothing_above_them():
    graph = _graph()
    upward = {
        (n, t)
        for n, ts in graph.items()
        if n.startswith(("nnspec.nn", "nnspec.layers"))
        for t in ts
        if t.startswith(ABOVE_NUMERICS)
    }
    assert not upward, f"upward arrows: {sorted(upward)}"


def test_the_runtime_never_imports_nnspec():
    graph = _graph(typing=True)
    wrong = {
        (n, t)
        for n, ts in graph.items()
        if n.startswith("nnspec_runtime")
        for t in ts
        if t.startswith("nnspec.") or t == "nnspec"
    }
    assert not wrong, wrong


def test_the_circle_finder_finds_a_circle():
    # The check above cannot pass by finding nothing: two modules importing each other.
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
