"""Safe YAML loading that keeps where every key and value was written.

Pydantic's errors carry a location such as ``("layers", 1, "units")`` but no line numbers. We
compose the YAML node graph with PyYAML's *safe* loader (no Python tags are ever constructed),
build plain Python data from it ourselves, and record the start mark of each value and key by
its path, so that any error can be pointed back at ``file:line:col``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from ..errors import Issue, SpecError, YamlPath

# A document that expands to more nodes than this is not a spec but an alias bomb or a mistake;
# stop before walking it (the biggest real spec has a few hundred nodes).
MAX_NODES = 100_000
MAX_DEPTH = 64
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
        if isinstance(node, yaml.ScalarNode):
            # A scalar tag the safe constructor does not know (!!python/name:..., !include)
            # gets the same message as a collection's, rather than a constructor error.
            unsupported = node.tag not in type(self.loader).yaml_constructors
        else:  # collections we build ourselves, and only plain ones
            unsupported = node.tag not in _PLAIN_TAGS
        if unsupported:
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
                    line, col = self.marks.keys[path + (key,)]
                    raise self.fail(
                        f"duplicate key '{key}'; it is already set at line {line}, column "
                        f"{col}, and a key may appear only once in a mapping",
                        path + (key,),
                        key_node.start_mark,
                    )
                self.marks.keys[path + (key,)] = _pos(key_node.start_mark)
                out[key] = self.build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node)


# PyYAML's token names, as a user would say them.
_TOKENS = {
    "<block mapping start>": "a more indented key",
    "<block sequence start>": "a more indented list item",
    "<block end>": "the end of the block",
    "<scalar>": "a value",
    "<document start>": "'---'",
    "<stream end>": "the end of the file",
    "unexpected end of stream": "the end of the file",
    "<alias>": "an alias (*name)",
    "<anchor>": "an anchor (&name)",
    "<tag>": "a tag (!name)",
}
_THINGS = {
    "flow mapping": "{...} mapping",
    "flow sequence": "[...] list",
    "block mapping": "mapping",
    "block collection": "list",
    "quoted scalar": "quoted string",
    "simple key": "key",
}


def _plain(text: str) -> str:
    for token, words in _TOKENS.items():
        text = text.replace(f"'{token}'", words).replace(token, words)
    return text


def _syntax_message(e: yaml.MarkedYAMLError) -> str:
    """PyYAML's "while parsing a flow mapping expected ',' or '}', but got '{'" in plain words,
    with where the enclosing construct starts and a hint for the usual causes."""
    problem, context, cmark = e.problem or "", e.context or "", e.context_mark
    start = re.fullmatch(r"while (?:parsing|scanning) an? (.+)", context)
    thing = _THINGS.get(start[1], start[1]) if start else ""
    where = f"line {cmark.line + 1}" if cmark else ""
    if start and cmark and problem.startswith("expected <block end>, but found"):
        # A line indented so that it belongs to no block: PyYAML wanted the next entry of the
        # enclosing block (at that block's column) or a less indented line.
        entry = "a '-' item" if thing == "list" else "a key"
        found = _plain(problem.split("but found ", 1)[1])
        return (
            f"bad indentation: expected {entry} in column {cmark.column + 1} (lined up "
            f"with {where}) or a less indented line, but found {found}"
        )
    message = _plain(problem)
    if (
        start
        and cmark
        and e.problem_mark
        and (cmark.line, cmark.column) != (e.problem_mark.line, e.problem_mark.column)
    ):
        message += f" (in the {thing} that starts at {where}, column {cmark.column + 1})"
    elif context and not context.startswith("while "):
        message = f"{context} {message}"
    closing = {"{...} mapping": "}", "[...] list": "]"}.get(thing)
    if closing and f"'{closing}'" in problem:
        message += f"; is a closing '{closing}' missing?"
    elif "'\\t'" in problem:
        message += "; indent with spaces, YAML does not allow tabs"
    elif problem == "mapping values are not allowed here":
        message += "; check this line's indentation, or quote a value that contains ': '"
    return message


class SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as a number as YAML 1.2 does.

    YAML 1.1 (PyYAML's) wants a dot in a float (``1.0e-3``) and reads ``1e-3`` as text, which no
    one writing a learning rate expects. Nesting is bounded: PyYAML composes nodes recursively,
    and ``[[[[...]]]]`` thousands deep would end in a RecursionError.
    """

    depth = 0
    file: str | None = None  # for messages

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                line, col = _pos(mark)
                raise SpecError(
                    [
                        Issue(
                            f"the document nests more than {MAX_DEPTH} levels deep; a spec is "
                            "expected to nest a few",
                            (),
                            self.file,
                            line,
                            col,
                        )
                    ]
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str, file: str | None = None) -> tuple[object, Marks]:
    """Parse one YAML document safely; return the data and the marks of every node.

    Raises
    ------
    SpecError
        On a syntax error, an unsafe or unknown tag, a duplicate key, or more than one document;
        located at the offending mark.
    """
    try:
        loader = SpecLoader(text)
    except yaml.reader.ReaderError as e:  # a control character, before any parsing
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise SpecError(
            [
                Issue(
                    f"invalid YAML: unacceptable character #x{e.character:04x}: control "
                    "characters are not allowed in a spec",
                    (),
                    file,
                    line,
                    col,
                )
            ]
        ) from None
    loader.file = file
    try:
        node = loader.get_single_node()
        if node is None:
            what = "is empty" if not text.strip() else "holds only comments and blank lines"
            raise SpecError([Issue(f"the file {what}; expected a YAML mapping", (), file, 1, 1)])
        builder = _Builder(loader, file)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = _pos(mark) if mark else (None, None)
        message = f"invalid YAML: {_syntax_message(e)}"
        raise SpecError([Issue(message, (), file, line, col)]) from None
    except yaml.YAMLError as e:  # pragma: no cover - PyYAML raises marked errors in practice
        raise SpecError([Issue(f"invalid YAML: {e}", (), file)]) from None
    finally:
        loader.dispose()
    return data, builder.marks
