"""Safe YAML loading that keeps where every key and value was written.

Pydantic's errors carry a location such as ``("layers", 1, "units")`` but no line numbers. We
compose the YAML node graph with PyYAML's *safe* loader (no Python tags are ever constructed),
build plain Python data from it ourselves, and record the start mark of each value and key by
its path, so that any error can be pointed back at ``file:line:col``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from .errors import Issue, SpecError, YamlPath

# A document that expands to more nodes than this is not a spec but an alias bomb or a mistake;
# stop before walking it (the biggest real spec has a few hundred nodes).
MAX_NODES = 100_000
_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


@dataclass
class Marks:
    """1-based (line, col) of each value and each mapping key, by YAML path."""

    values: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)

    def value(self, path: YamlPath) -> tuple[int, int] | None:
        """Mark of the value at ``path``, or of its nearest enclosing value."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.values:
                return self.values[path[:n]]
        return None

    def key(self, path: YamlPath) -> tuple[int, int] | None:
        return self.keys.get(path) or self.value(path)


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str | None):
        self.loader = loader
        self.file = file
        self.marks = Marks()
        self.count = 0

    def fail(self, message: str, path: YamlPath, mark: yaml.Mark) -> SpecError:
        line, col = _pos(mark)
        return SpecError([Issue(message, path, self.file, line, col)])

    def build(self, node: yaml.Node, path: YamlPath):
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                f"the document expands to more than {MAX_NODES} nodes (nested aliases?); "
                "a spec is expected to be a few hundred",
                path,
                node.start_mark,
            )
        self.marks.values[path] = _pos(node.start_mark)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            # Scalars are checked by the safe constructor; collections we build ourselves.
            raise self.fail(
                f"unsupported YAML tag '{node.tag}'; a spec holds plain mappings, lists and "
                "scalars only",
                path,
                node.start_mark,
            )
        if isinstance(node, yaml.MappingNode):
            # Resolves YAML merge keys (<<) the way the safe constructor would.
            self.loader.flatten_mapping(node)
            out: dict = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(
                        "expected a plain key (a name), got a mapping or list as key",
                        path,
                        key_node.start_mark,
                    )
                key = self.loader.construct_object(key_node)
                if not isinstance(key, str):
                    key = str(key)
                if key in out:
                    raise self.fail(f"duplicate key '{key}'", path, key_node.start_mark)
                self.marks.keys[path + (key,)] = _pos(key_node.start_mark)
                out[key] = self.build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node)


def load_yaml(text: str, file: str | None = None) -> tuple[object, Marks]:
    """Parse one YAML document safely; return the data and the marks of every node.

    Raises
    ------
    SpecError
        On a syntax error, an unsafe or unknown tag, a duplicate key, or more than one document;
        located at the offending mark.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Issue("the file is empty; expected a YAML mapping", (), file, 1, 1)])
        builder = _Builder(loader, file)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = _pos(mark) if mark else (None, None)
        what = " ".join(p for p in (e.context, e.problem) if p)
        raise SpecError([Issue(f"invalid YAML: {what}", (), file, line, col)]) from None
    except yaml.YAMLError as e:  # pragma: no cover - PyYAML raises marked errors in practice
        raise SpecError([Issue(f"invalid YAML: {e}", (), file)]) from None
    finally:
        loader.dispose()
    return data, builder.marks
