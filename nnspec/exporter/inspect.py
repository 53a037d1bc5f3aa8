"""``nnspec inspect``: what an .onnx file holds, read without running it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

from ..errors import ModelError


def _dims(value_info) -> str:
    dims = value_info.type.tensor_type.shape.dim
    return "(" + ", ".join(d.dim_param or str(d.dim_value) for d in dims) + ")"


def _elem(value_info) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type).name


def load(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a directory; expected an .onnx file") from None
    except Exception as e:  # protobuf raises DecodeError and others for corrupt bytes
        raise ModelError(f"{path}: not a readable ONNX model: {e}") from None


def describe(path: Path) -> str:
    model = load(path)
    g = model.graph
    meta = {p.key: p.value for p in model.metadata_props}
    params = sum(
        int(np.prod(t.dims))
        for t in g.initializer
        if not t.name.startswith(("preprocess.", "postprocess.")) and "/" not in t.name
    )
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    lines = [
        f"{path}",
        f"  graph:     {g.name} ({len(g.node)} nodes)",
        f"  producer:  {model.producer_name} {model.producer_version}",
        f"  IR:        {model.ir_version}; opset: {opsets}",
        f"  params:    {params:,}",
        "  inputs:",
        *(f"    {i.name}: {_elem(i)} {_dims(i)}" for i in g.input),
        "  outputs:",
        *(f"    {o.name}: {_elem(o)} {_dims(o)}" for o in g.output),
    ]
    shown = {k: v for k, v in meta.items() if k != "nnspec_spec_yaml"}
    if shown:
        lines.append("  metadata:")
        for k, v in sorted(shown.items()):
            try:
                v = json.dumps(json.loads(v), sort_keys=True)
            except ValueError:
                pass
            lines.append(f"    {k}: {v if len(v) <= 200 else v[:197] + '...'}")
    if "nnspec_spec_yaml" in meta:
        lines.append(
            f"  spec:      {len(meta['nnspec_spec_yaml'].splitlines())} lines of YAML "
            "(nnspec_spec_yaml)"
        )
    return "\n".join(lines)
