"""Turn Pydantic's validation errors into located, human messages.

Pydantic reports ``loc=("layers", 1, "dense", "units")`` and ``"Input should be greater than
0"``. Users need ``iris.yaml:7:25: layers[1].units: expected a positive integer, got -3``. The
``loc`` contains union tags (``"dense"``) that are not YAML keys, so we walk the loaded data
along it and keep only the parts that are really there.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Tag, ValidationError

from ..errors import Issue, YamlPath, format_path
from .yamlload import Marks


def describe_value(value: Any) -> str:
    """How a received value is named in messages: ``the string 'ten'``, ``a list``, ..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


# Names that other frameworks use for an option nnspec spells differently; difflib cannot see
# that "sigmoid" means "logistic".
_SYNONYMS = {
    "sigmoid": "logistic",
    "linear": "identity",
    "none": "identity",
    "categorical_crossentropy": "cross_entropy",
    "mean_squared_error": "mse",
}


def _did_you_mean(word: Any, options: list[str]) -> str:
    if not isinstance(word, str):
        return ""
    synonym = _SYNONYMS.get(word.lower())
    if synonym in options:
        return f"did you mean '{synonym}'?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _unknown(what: str, word: Any, options: list[str]) -> str:
    """``unknown key 'unitz'; did you mean 'units'? expected one of: ...``."""
    hint = _did_you_mean(word, options)
    expected = f"expected one of: {', '.join(options)}"
    if hint:
        return f"unknown {what} '{word}'; {hint} Expected one of: {', '.join(options)}"
    return f"unknown {what} '{word}'; {expected}"


def unknown_name(what: str, word: str, options: list[str], where: str) -> str:
    """``unknown feature 'petal_lenght' in iris; did you mean 'petal_length'? ...``; long option
    lists are cut to a few."""
    hint = _did_you_mean(word, options)
    shown = ", ".join(options[:8]) + (f", ... ({len(options)} in all)" if len(options) > 8 else "")
    if hint:
        return f"unknown {what} '{word}' in {where}; {hint} Expected one of: {shown}"
    return f"unknown {what} '{word}' in {where}; expected one of: {shown}"


def _nested_homes(models: list[type[BaseModel]], key: Any) -> list[tuple[str, Any]]:
    """The fields one level down that accept ``key``: ``epochs`` -> ``[("train", "epochs")]``."""
    homes: list[tuple[str, Any]] = []
    for m in models:
        for name, f in m.model_fields.items():
            for t, _ in _flatten(f.annotation):
                if _is_model(t) and key in t.model_fields and (name, key) not in homes:
                    homes.append((name, key))
    return homes


def _flatten(tp: Any) -> list[tuple[Any, str | None]]:
    """The concrete types behind Annotated/Optional/Union, each with its union Tag if any."""
    out: list[tuple[Any, str | None]] = []
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        tags = [m.tag for m in meta if isinstance(m, Tag)]
        for t, tag in _flatten(base):
            out.append((t, tag or (tags[0] if tags else None)))
    elif origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            out.extend(_flatten(arg))
    else:
        out.append((tp, None))
    return out


def _model_tag(model: type[BaseModel], tag: str | None) -> str | None:
    if tag:
        return tag
    kind = model.model_fields.get("kind")
    if kind is not None and typing.get_origin(kind.annotation) is Literal:
        return typing.get_args(kind.annotation)[0]
    return None


def _is_model(t: Any) -> bool:
    return inspect.isclass(t) and issubclass(t, BaseModel)


def models_at(root: type[BaseModel], loc: tuple) -> list[tuple[type[BaseModel], str | None]]:
    """The spec models that may sit at ``loc`` (several for an unresolved union)."""
    current: list[tuple[Any, str | None]] = [(root, None)]
    for i, part in enumerate(loc):
        flat = [ft for t, _ in current for ft in _flatten(t)]
        nxt: list[tuple[Any, str | None]] = []
        tagged = [(t, tag) for t, tag in flat if _is_model(t) and _model_tag(t, tag) == part]
        after = loc[i + 1] if i + 1 < len(loc) else None
        if tagged and any(after in t.model_fields for t, _ in tagged):
            # {npz: a.npz, test: ...}: "npz" is the tag here, not the field of the same name
            current = tagged
            continue
        for t, _tag in flat:
            if isinstance(part, int) and typing.get_origin(t) is list:
                nxt.append((typing.get_args(t)[0], None))
            elif _is_model(t) and part in t.model_fields:
                nxt.append((t.model_fields[part].annotation, None))
        if not nxt:  # a union tag: pick the member it names
            nxt = [(t, tag) for t, tag in flat if _is_model(t) and _model_tag(t, tag) == part]
        current = nxt or current
    return [(t, tag) for t0, _ in current for t, tag in _flatten(t0) if _is_model(t)]


def _is_tag(node: dict, part: Any, after: Any) -> bool:
    """``part`` names a sibling of ``after`` (a tag the union chose), not its parent."""
    if after is None or isinstance(after, int) or after not in node or after == part:
        return False
    child = node[part]
    return not (isinstance(child, dict) and after in child)


def _yaml_path(data: Any, loc: tuple) -> tuple[YamlPath, bool]:
    """Keep the parts of ``loc`` that exist in the data; say whether the last one is absent."""
    path: list[str | int] = []
    node = data
    tag_before = False
    for i, part in enumerate(loc):
        after = loc[i + 1] if i + 1 < len(loc) else None
        # A tag is never followed by another ({npz: a.npz, test: {...}}: "test" is a key).
        if (
            not tag_before
            and isinstance(node, dict)
            and part in node
            and _is_tag(node, part, after)
        ):
            tag_before = True
            continue  # {csv: x.csv, features: []}: "csv" is both the union tag and a key
        tag_before = False
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and i == len(loc) - 1 and isinstance(part, str):
            return (*path, part), True
        else:
            continue  # a union tag or a validator's name, not a YAML key
        path.append(part)
    return tuple(path), False


def _integer_field(err: dict, models: list[type[BaseModel]]) -> bool:
    """Whether the bound that failed is on an integer, from the field's type, not the value's
    (``epsilon: 0`` is an integer in YAML, but epsilon is a number)."""
    loc = err["loc"]
    label = loc[-1] if loc else None
    if isinstance(label, str) and ("int" in label or "float" in label) and label.islower():
        return "int" in label and "float" not in label  # a union member: constrained-int, ...
    for model in models:
        field = model.model_fields.get(label) if isinstance(label, str) else None
        if field is not None:
            return "float" not in repr(field.annotation)
    return isinstance(err.get("input"), int)


# Errors that only say the value has another type than one member of a union accepts.
_TYPE_ERRORS = {
    "int_type",
    "int_from_float",
    "int_parsing",
    "float_type",
    "float_parsing",
    "bool_type",
    "string_type",
    "list_type",
    "dict_type",
    "literal_error",
}


def _merge_union_errors(issues: list[tuple[dict, Issue]]) -> list[Issue]:
    """One line per YAML node. A value of a field with several forms (an int or a list, the
    words valid/same) fails each form; the form whose type matched says what is wrong
    (``kernel_size: 0``: the integer must be positive), else all the forms are listed."""
    # kernel_size: [3, 0] is a list whose item is wrong: the integer form's "expected an
    # integer, got a list" is beside the point when the list form has errors inside.
    paths = [issue.path for _, issue in issues]
    issues = [
        (err, issue)
        for err, issue in issues
        if not (
            err["type"] in _TYPE_ERRORS
            and any(len(q) > len(issue.path) and q[: len(issue.path)] == issue.path for q in paths)
        )
    ]
    groups: dict[tuple, list[tuple[dict, Issue]]] = {}
    for err, issue in issues:
        groups.setdefault((issue.path, issue.line, issue.col), []).append((err, issue))
    out = []
    for group in groups.values():
        specific = [i for e, i in group if e["type"] not in _TYPE_ERRORS]
        if len(group) == 1 or len(specific) == 1:
            out.append(specific[0] if specific else group[0][1])
            continue
        if specific:
            out.extend(specific)
            continue
        forms = []
        for _err, issue in group:
            form = issue.message.split("expected ", 1)[-1].split(", got ")[0]
            if form not in forms:
                forms.append(form)
        got = describe_value(group[0][0].get("input"))
        first = group[0][1]
        joined = ", ".join(forms[:-1]) + f" or {forms[-1]}" if len(forms) > 1 else forms[0]
        out.append(
            Issue(f"expected {joined}, got {got}", first.path, first.file, first.line, first.col)
        )
    return out


def _first_sentence(text: str | None) -> str:
    return (text or "").split(". ")[0].rstrip(".")


def _message(
    err: dict, models: list[type[BaseModel]], tags: list[str], parent: YamlPath = ()
) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = describe_value(err.get("input"))
    loc = err["loc"]
    if kind == "missing":
        field = loc[-1]
        desc = next(
            (m.model_fields[field].description for m in models if field in m.model_fields), None
        )
        hint = f" ({_first_sentence(desc)})" if desc else ""
        return f"missing required key '{field}'{hint}"
    if kind == "extra_forbidden":
        allowed = sorted({f for m in models for f in m.model_fields})
        homes = _nested_homes(models, loc[-1])
        if homes:
            # A known key one level too high (epochs at the top is train.epochs): say where it
            # goes rather than guess a spelling.
            spelled = " or ".join(f"'{format_path((*parent, *home))}'" for home in homes)
            return (
                f"unknown key '{loc[-1]}' here; did you mean {spelled}? Expected one of: "
                f"{', '.join(allowed)}"
            )
        return _unknown("key", loc[-1], allowed)
    if kind == "union_tag_invalid":
        disc = ctx.get("discriminator", "").strip("'")
        # Name the union by the key holding it: "unknown optimizer kind", not "unknown kind".
        owner = next((p for p in reversed(loc) if isinstance(p, str)), "")
        what = "layer kind" if owner == "layers" else f"{owner} {disc}".strip()
        return _unknown(what, ctx.get("tag"), tags)
    if kind == "union_tag_not_found":
        disc = ctx.get("discriminator", "").strip("'")
        if not isinstance(err.get("input"), dict):
            return f"expected a mapping with a '{disc}' key, got {got}"
        return f"missing required key '{disc}'; expected one of: {', '.join(tags)}"
    if kind == "data_source":
        if isinstance(err.get("input"), dict):
            keys = ", ".join(map(str, err["input"])) or "none"
            return f"expected one of the keys builtin, csv, npz, idx or parquet, got keys: {keys}"
        return (
            f"expected a mapping with one of the keys builtin, csv, npz, idx or parquet, got {got}"
        )
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        hint = _did_you_mean(err.get("input"), options)
        return f"expected {expected}, got {got}" + (f"; {hint}" if hint else "")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {
            "greater_than": ">",
            "greater_than_equal": ">=",
            "less_than": "<",
            "less_than_equal": "<=",
        }[kind]
        bound = next(iter(ctx.values()))
        number = "an integer" if _integer_field(err, models) else "a number"
        if kind == "greater_than" and bound == 0:
            number = "a positive integer" if number == "an integer" else "a positive number"
            return f"expected {number}, got {got}"
        return f"expected {number} {op} {bound}, got {got}"
    simple = {
        "int_type": "an integer",
        "int_from_float": "an integer",
        "int_parsing": "an integer",
        "float_type": "a number",
        "float_parsing": "a number",
        "finite_number": "a finite number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
    }
    if kind == "string_type" and isinstance(err.get("input"), bool):
        # YAML 1.1 reads unquoted yes/no/on/off/true/false as booleans (classes: [no, yes]).
        return f"expected a string, got {got}; quote words like yes, no, on, off: 'no'"
    if kind in simple:
        return f"expected {simple[kind]}, got {got}"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])  # our own validators' messages already say what and why
    if kind == "string_too_short":
        return f"expected a non-empty string, got {got}"
    if kind == "string_pattern_mismatch":
        return f"expected a name matching {ctx.get('pattern')}, got {got}"
    return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {got}"


def issues_from_validation_error(
    error: ValidationError,
    data: Any,
    marks: Marks,
    file: str | None,
    root: type[BaseModel],
) -> list[Issue]:
    """One located ``Issue`` per Pydantic error, in file order."""
    issues = []
    for err in error.errors():
        loc = err["loc"]
        if err["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            field_models = [m for m, _ in models_at(root, loc[:-1])]
        else:
            field_models = None
        path, absent = _yaml_path(data, loc)
        kind = err["type"]
        owner_loc = loc[:-1] if kind in ("missing", "extra_forbidden") else loc
        candidates = models_at(root, owner_loc)
        models = [m for m, _ in candidates]
        tags = sorted({t for m, tag in candidates if (t := _model_tag(m, tag))})
        message = _message(err, field_models or models, tags, path[:-1])
        if kind == "union_tag_invalid" and "kind" in (err.get("input") or {}):
            path = (*path, "kind")  # point at the misspelled tag, not the whole mapping
        if absent:
            mark = marks.value(path[:-1])
        elif kind == "extra_forbidden":
            mark = marks.key(path)
        else:
            mark = marks.value(path)
        line, col = mark if mark else (None, None)
        issues.append((err, Issue(message, path, file, line, col)))
    merged = _merge_union_errors(issues)
    merged.sort(key=lambda i: (i.line or 0, i.col or 0))
    return merged
