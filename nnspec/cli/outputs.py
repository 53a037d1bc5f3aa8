"""What a command reads, so that none of its outputs is written over one of them.

``nnspec train s.yaml -o s.yaml`` would write ONNX bytes over the spec, ``nnspec predict m.onnx
x.csv -o m.onnx`` predictions over the model, ``-o d.csv`` over the training data: each is
refused before any work, by inode (a link or another spelling of the same file counts).
"""

from __future__ import annotations

from pathlib import Path

from .. import atomic
from ..spec.models import BuiltinData


def spec_inputs(spec, resume: str | Path | None = None) -> dict[str, Path | None]:
    """The files a spec makes a command read: the spec itself, its data file, its
    ``init.from`` model (and that model's external data), and a checkpoint resumed from."""
    base = spec.source.base_dir
    inputs: dict[str, Path | None] = {"spec": Path(spec.source.file) if spec.source.file else None}
    if spec.data is not None and not isinstance(spec.data, BuiltinData):
        from ..pipeline import source_path

        inputs["data file"] = base / source_path(spec.data)  # a glob matches nothing: harmless
        idx = getattr(spec.data, "idx", None)
        if idx is not None:
            inputs["labels file"] = base / idx.labels
    if spec.init is not None:
        model = base / spec.init.from_
        inputs["init.from model"] = model
        inputs["init.from model's data"] = model.with_name(model.name + ".data")
    if resume is not None:
        resume = Path(resume)
        inputs["checkpoint"] = resume / "checkpoint.json" if resume.is_dir() else resume
    return inputs


# Outputs that are text, for which "-" means standard output.
TEXT_OUTPUTS = ("metrics", "predictions")


def check_outputs(outputs: dict[str, str | Path | None], inputs: dict[str, str | Path | None]):
    """Each output writable, none of them an input nor given twice (see the module docstring).
    An ``.onnx`` output's ``.data`` file (a model over 2 GB) counts as an output too."""
    for what, path in outputs.items():
        if path is not None:
            atomic.check_writable(path, stdout=what in TEXT_OUTPUTS)
    expanded = dict(outputs)
    for what, path in outputs.items():
        if path is not None and str(path).endswith(".onnx") and not atomic.is_stream(path):
            expanded[f"{what}'s data file"] = f"{path}.data"
    atomic.check_not_input(expanded, inputs)
