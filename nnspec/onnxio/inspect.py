"""``nnspec inspect``: what an .onnx file holds, read without running it: the file's graph,
inputs, outputs and metadata, and the layer table of the spec embedded in it."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import onnx

from .. import untrusted
from .._version import __version__
from ..errors import ModelError, NnspecError
from ..spec.shapes import infer, summary
from .load import load_onnx
from .read import ModelContents, model_io


def _type(value_info) -> str:
    """``float32 (batch, 4)`` for a tensor; onnx's own words for sequences, maps, ..."""
    t = value_info.type
    if t.WhichOneof("value") != "tensor_type":
        return onnx.helper.printable_type(t)
    code = t.tensor_type.elem_type
    if code == onnx.TensorProto.STRING:
        dtype = "string"
    else:
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(code).name
        except (KeyError, ValueError, TypeError):
            # Not a type that onnx knows (999): say so, rather than fail on it.
            dtype = f"unknown element type {code}"
    dims = t.tensor_type.shape.dim
    return f"{dtype} (" + ", ".join(d.dim_param or str(d.dim_value) for d in dims) + ")"


def _external_data(model: onnx.ModelProto, path: Path) -> list[dict]:
    """Each external data file the weights are in: its location and size (None: missing)."""
    locations = []
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = {e.key: e.value for e in t.external_data}.get("location", "?")
            if loc not in locations:
                locations.append(loc)
    from nnspec_runtime.files import location_problem

    files = []
    for loc in locations:
        problem = location_problem(loc)
        if problem:  # a NUL byte, 5,000 characters: not a file name to look up
            files.append({"location": loc[:200], "bytes": None, "refused": problem})
            continue
        try:
            st = (path.parent / loc).stat()
            size = st.st_size if stat.S_ISREG(st.st_mode) else None
        except (OSError, ValueError):
            size = None
        files.append({"location": loc, "bytes": size})
    return files


def _metadata_value(text: str) -> object:
    """A value nnspec wrote as JSON, decoded; anything else (a version, a sha256 that happens
    to read as a number) stays the text it is. Non-finite numbers become None."""
    if len(text) > 2**20:
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if untrusted.nested_deeper_than(value, untrusted.MAX_JSON_DEPTH):
        return text
    same = text in (json.dumps(value), json.dumps(value, sort_keys=True))
    return untrusted.finite_json(value) if same else text


def model_info(path: Path, model: onnx.ModelProto | None = None) -> dict:
    """What the file holds, as JSON-ready data (the ``model`` part of ``inspect --json``)."""
    model = model if model is not None else load_onnx(path)
    g = model.graph
    meta = {p.key: p.value for p in model.metadata_props}
    # nnspec records its count; for other models every initializer counts as a parameter.
    params = sum(math.prod(t.dims) for t in g.initializer)
    if "nnspec_param_count" in meta:
        params = untrusted.parse_int(
            meta["nnspec_param_count"], f"{path}: metadata nnspec_param_count", ModelError, 0
        )
    spec_yaml = meta.pop("nnspec_spec_yaml", None)
    return {
        "path": str(path),
        "graph": g.name,
        "nodes": len(g.node),
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "ir_version": model.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "params": params,
        "external_data": _external_data(model, path),
        "inputs": [{"name": i.name, "type": _type(i)} for i in g.input],
        "outputs": [{"name": o.name, "type": _type(o)} for o in g.output],
        "metadata": {k: _metadata_value(v) for k, v in sorted(meta.items())},
        "spec_yaml_lines": len(spec_yaml.splitlines()) if spec_yaml is not None else None,
        "preprocessing": preprocessing(meta, {t.name for t in g.initializer}),
    }


def preprocessing(meta: dict[str, str], initializers: set[str]) -> dict:
    """What the graph does to its inputs before the first layer: the raw columns of a
    tabular model (kind, fill value, categories) and whether it standardizes."""
    out: dict = {"standardize": "preprocess.mean" in initializers}
    if "nnspec_tabular" in meta:
        try:
            out["tabular"] = json.loads(meta["nnspec_tabular"])
        except (ValueError, RecursionError):
            out["tabular"] = None
    return out


def _preprocessing_lines(pre: dict) -> list[str]:
    tab = pre.get("tabular")
    scaled = "standardized (Sub, Div)" if pre["standardize"] else "not standardized"
    if not tab:
        return [f"  preprocessing: inputs {scaled}"]
    lines = [
        f"  preprocessing: raw columns in, one graph input each ({tab.get('unknown')}"
        " unknown categories); numeric columns then " + scaled
    ]
    width = max(len(c["name"]) for c in tab["columns"])
    for c in tab["columns"]:
        if c["kind"] == "categorical":
            cats = c["categories"]
            shown = ", ".join(cats[:8]) + (f", ... ({len(cats)} in all)" if len(cats) > 8 else "")
            what = f"categorical, one-hot over {len(cats)}: {shown}"
        elif c.get("impute"):
            what = f"numeric, missing -> {c['impute']['strategy']} {c['impute']['value']:.6g}"
        else:
            what = "numeric, missing values refused"
        lines.append(f"    {c['name']:<{width}}  {what}")
    return lines


def graph_listing(model: onnx.ModelProto) -> tuple[list[dict], list[dict]]:
    """(nodes, initializers) in graph order: each node's name, op type and attributes as Python
    values, each initializer's name and dims. docs/onnx.md is written from this (outside the
    exporter nothing imports onnx)."""
    nodes = [
        {
            "name": n.name,
            "op_type": n.op_type,
            "attributes": {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute},
        }
        for n in model.graph.node
    ]
    inits = [{"name": t.name, "dims": list(t.dims)} for t in model.graph.initializer]
    return nodes, inits


def layer_summary(path: Path, model: onnx.ModelProto) -> tuple[dict | None, str | None]:
    """(the layer summary of ``nnspec validate`` for the model's embedded spec, None), or
    (None, why there is none): a model not written by nnspec, or a spec this version of nnspec
    cannot read."""
    contents = ModelContents(path, {p.key: p.value for p in model.metadata_props}, model)
    if "nnspec_spec_yaml" not in contents.metadata:
        return None, "no embedded nnspec spec (metadata nnspec_spec_yaml)"
    try:
        spec = contents.spec()
        io = model_io(contents, spec)
        return summary(spec, io, infer(spec, io)), None
    except NnspecError as e:
        first = str(e).splitlines()[0]
        return None, f"the embedded spec cannot be read by nnspec {__version__}: {first}"


def inspect_json(path: Path) -> dict:
    """``nnspec inspect --json``: the keys of ``nnspec validate --json`` (null for a model
    not written by nnspec), plus ``model``: what the file holds."""
    model = load_onnx(path)  # once: AlexNet's file is 245 MB
    info = model_info(path, model)
    data, why = layer_summary(path, model)
    if data is None:
        data = {
            "name": info["graph"],
            "task": None,
            "input": None,
            "layers": None,
            "total_params": info["params"],
            "trainable_params": None,
            "frozen_params": None,
            "layers_unavailable": why,
        }
    data["model"] = info
    return data


def describe(path: Path, info: dict | None = None) -> str:
    """The file in words (``info``: its ``model_info``): graph, producer, IR and opsets,
    parameters, inputs, outputs and metadata; ``nnspec inspect`` prints the layer table under
    it."""
    info = info or model_info(path)
    opsets = ", ".join(f"{domain} {version}" for domain, version in info["opsets"].items())
    lines = [
        f"{path}",
        f"  graph:     {info['graph']} ({info['nodes']} nodes)",
        f"  producer:  {info['producer']}",
        f"  IR:        {info['ir_version']}; opset: {opsets}",
        f"  params:    {info['params']:,}",
    ]
    for f in info["external_data"]:
        if f.get("refused"):
            lines.append(
                f"  weights:   in {f['location']!r:.80}, which is refused: it {f['refused']}"
            )
        elif f["bytes"] is None:
            lines.append(
                f"  weights:   in {f['location']}, which is MISSING: the model cannot run "
                "without it"
            )
        else:
            size = f["bytes"]
            shown = f"{size / 2**20:,.1f} MiB" if size >= 2**20 else f"{size / 2**10:,.1f} KiB"
            lines.append(f"  weights:   in {f['location']} ({shown})")
    lines += [
        "  inputs:",
        *(f"    {i['name']}: {i['type']}" for i in info["inputs"]),
        "  outputs:",
        *(f"    {o['name']}: {o['type']}" for o in info["outputs"]),
    ]
    lines += _preprocessing_lines(info["preprocessing"])
    if info["metadata"]:
        lines.append("  metadata:")
        for k, v in info["metadata"].items():
            v = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
            lines.append(f"    {k}: {v if len(v) <= 200 else v[:197] + '...'}")
    if info["spec_yaml_lines"] is not None:
        lines.append(f"  spec:      {info['spec_yaml_lines']} lines of YAML (nnspec_spec_yaml)")
    return "\n".join(lines)
