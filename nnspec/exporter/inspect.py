"""``nnspec inspect``: what an .onnx file holds, read without running it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

from ..errors import ModelError


def _type(value_info) -> str:
    """``float32 (batch, 4)`` for a tensor; onnx's own words for sequences, maps, ..."""
    t = value_info.type
    if t.WhichOneof("value") != "tensor_type":
        return onnx.helper.printable_type(t)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.tensor_type.elem_type).name
    dims = t.tensor_type.shape.dim
    return f"{dtype} (" + ", ".join(d.dim_param or str(d.dim_value) for d in dims) + ")"


def load(path: Path) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a directory; expected an .onnx file") from None
    except Exception as e:  # protobuf raises DecodeError and others for corrupt bytes
        raise ModelError(f"{path}: not a readable ONNX model: {e}") from None
    if not model.HasField("graph") or not model.graph.output:
        # Protobuf parses an empty (or unrelated) file as an empty message without complaint.
        raise ModelError(f"{path}: not an ONNX model (no graph with outputs)")
    return model


def _external_data(model: onnx.ModelProto, path: Path) -> list[str]:
    """One line per external data file the weights are in, and whether it is there."""
    locations = []
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = {e.key: e.value for e in t.external_data}.get("location", "?")
            if loc not in locations:
                locations.append(loc)
    lines = []
    for loc in locations:
        file = path.parent / loc
        if file.is_file():
            size = file.stat().st_size
            shown = f"{size / 2**20:,.1f} MiB" if size >= 2**20 else f"{size / 2**10:,.1f} KiB"
            lines.append(f"  weights:   in {loc} ({shown})")
        else:
            lines.append(
                f"  weights:   in {loc}, which is MISSING: the model cannot run without it"
            )
    return lines


def describe(path: Path) -> str:
    model = load(path)
    g = model.graph
    meta = {p.key: p.value for p in model.metadata_props}
    # nnspec records its count; for other models every initializer counts as a parameter.
    params = int(meta.get("nnspec_param_count", sum(int(np.prod(t.dims)) for t in g.initializer)))
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    lines = [
        f"{path}",
        f"  graph:     {g.name} ({len(g.node)} nodes)",
        f"  producer:  {model.producer_name} {model.producer_version}",
        f"  IR:        {model.ir_version}; opset: {opsets}",
        f"  params:    {params:,}",
        *_external_data(model, path),
        "  inputs:",
        *(f"    {i.name}: {_type(i)}" for i in g.input),
        "  outputs:",
        *(f"    {o.name}: {_type(o)}" for o in g.output),
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
