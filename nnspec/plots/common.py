"""What every plot shares: matplotlib on demand, figures, output files, and the data points.

matplotlib is an optional extra (``nnspec[plot]``) and is imported only when a plot is drawn;
figures are ``matplotlib.figure.Figure`` objects on an Agg canvas, never pyplot's global state,
so plotting works headless and from threads, and nothing leaks between plots.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import atomic
from ..errors import DataError, NnspecError
from ..spec.models import BuiltinData, CsvData, NpzData

INSTALL = 'pip install "nnspec[plot]"'
FORMATS = {".png": "png", ".svg": "svg"}
DPI = 100
# Units of the built-in datasets' columns, for axis labels (the data files carry names only).
UNITS = {
    "mcycle": {"times": "ms", "accel": "g"},
    "iris": {f: "cm" for f in ("sepal_length", "sepal_width", "petal_length", "petal_width")},
}
# Class colours: matplotlib's tab10, spelled out so that nothing is imported to know them.
CLASS_COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


class PlotError(NnspecError):
    """A plot that cannot be drawn: matplotlib missing, a wrong output suffix, a model the
    plot does not apply to. The CLI prints it and exits with code 2."""


def require_matplotlib():
    """The matplotlib module, or a one-line error that says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError(
            f"plots need matplotlib, which is not installed; install it with: {INSTALL}"
        ) from None
    return matplotlib


def figure(width: float, height: float, dpi: float = DPI):
    """A new ``Figure`` of ``width`` x ``height`` inches on its own Agg canvas."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def check_output(path: str | Path) -> str:
    """The format that ``path``'s suffix asks for (png or svg), checked before any work."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        got = f"'{path.suffix}'" if path.suffix else "no suffix"
        raise PlotError(f"{path}: expected a .png or .svg file to write, got {got}")
    atomic.check_writable(path)
    return fmt


def save_figure(fig, path: str | Path) -> None:
    """Write ``fig`` to ``path`` (.png or .svg) atomically, at the figure's own size and dpi
    (no tight bounding box, so the image is exactly the size asked for)."""
    fmt = check_output(path)
    from matplotlib.text import Text

    # Every text drawn is plain: class, feature and model names come from files of others,
    # and matplotlib would read "$\\frac{1}{$" in one as broken mathtext and fail.
    for text in fig.findobj(Text):
        text.set_parse_math(False)
    buf = io.BytesIO()
    # No creation date in the file: the same plot gives the same bytes.
    meta = {"Date": None} if fmt == "svg" else {"Software": "nnspec"}
    fig.savefig(buf, format=fmt, dpi=fig.dpi, metadata=meta)
    atomic.write_bytes(path, buf.getvalue())


def label(spec, name: str) -> str:
    """An axis label: the column's name, with its unit when the data set is known to have one."""
    builtin = spec.data.builtin if isinstance(spec.data, BuiltinData) else None
    unit = UNITS.get(builtin, {}).get(name)
    return f"{name} ({unit})" if unit else name


# -- the data points drawn with a model -------------------------------------------------------


@dataclass
class Samples:
    """Data points to draw: raw inputs, their targets, and which were held out for testing.

    ``y`` holds class indices into the model's class names (classification) or targets
    (samples, outputs) (regression), or None when the data have no target column.
    """

    x: np.ndarray  # (samples, features) float64, as the model takes them before scaling
    y: np.ndarray | None
    test: np.ndarray | None  # bool per sample: in the test split (None: no split known)
    source: str


def _inside(base: Path, name: str) -> bool:
    """``base / name`` is a regular file in ``base`` or below (links resolved)."""
    if Path(name).is_absolute() or ".." in Path(name).parts or "\x00" in name:
        return False
    try:
        real, home = (base / name).resolve(), base.resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    return real.is_relative_to(home) and real.is_file()


def _globbed(base: Path, pattern: str) -> list[Path]:
    """The files a relative glob (Parquet shards) matches in ``base``; none for an absolute
    pattern or one with ``..``."""
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        return []
    try:
        return sorted(base.glob(pattern))
    except (ValueError, NotImplementedError, OSError):
        return []


def _present_inside(base: Path, name: str) -> bool:
    """``name`` (a file or a glob) is in ``base`` or below, every match a regular file there."""
    if _inside(base, name):
        return True
    matches = _globbed(base, name)
    return bool(matches) and all(_inside(base, str(m.relative_to(base))) for m in matches)


def _named_files(d) -> list[str]:
    """Every file a data source names: its own, an IDX source's labels, and its fixed
    validation and test parts' (a model's spec may name none outside its folder)."""
    from .. import pipeline

    names = []
    for source in (d, getattr(d, "validation", None), getattr(d, "test", None)):
        if source is None or isinstance(source, int | float):
            continue
        names.append(pipeline.source_path(source))
        idx = getattr(source, "idx", None)
        if idx is not None:
            names.append(idx.labels)
    return names


def _dataset_from_spec(spec, bases: list[Path]):
    """The spec's dataset, its file looked for in each of ``bases`` in turn (a model does not
    record where its spec file was).

    A spec embedded in a model came with the model, from whoever wrote it: the file it names
    is read only from the model's folder or below, or the current directory's (never an
    absolute path, ``..`` or a link out), and a file that turns out not to be its data is
    refused without showing anything of what it holds (its header could be a secret)."""
    from .. import pipeline

    d = spec.data
    if isinstance(d, BuiltinData):
        return pipeline.load_data(spec)
    name = pipeline.source_path(d)
    embedded = spec.source.file is None
    if embedded:
        named = _named_files(d)
        found = next((b for b in bases if all(_present_inside(b, n) for n in named)), None)
    else:
        found = next((b for b in bases if (b / name).is_file() or _globbed(b, name)), None)
    if found is None:
        where = " or ".join(str(b) for b in bases)
        outside = [
            n
            for n in (_named_files(d) if embedded else [])
            if Path(n).is_absolute() or ".." in Path(n).parts
        ]
        if outside:
            name = outside[0]
            raise DataError(
                f"the model's spec names its data as {name!r:.200}, outside the model's folder "
                "and the current directory; a model's spec may only name data beside it or "
                "below. Pass the data with --data FILE"
            )
        raise DataError(
            f"the model's spec reads its data from {name!r:.200}, relative to the spec file, "
            f"which the model does not record; not found in {where} (or below). Pass the data "
            "with --data FILE"
        )
    if not embedded:
        return pipeline.load_data(spec, base=found)
    try:
        return pipeline.load_data(spec, base=found)
    except DataError:
        raise DataError(
            f"{found / name}: named as its data by the spec embedded in the model, but not "
            "data that fits that spec (what the file holds is not shown: the model, not you, "
            "chose the file). Pass the data with --data FILE"
        ) from None


def _from_spec(spec, bases: list[Path]) -> tuple[Samples, list[str] | None] | None:
    """The spec's data, split as training split it (deterministic from ``train.seed``), and
    the data's class names; None when the spec names no data."""
    from .. import pipeline

    if spec.data is None:
        return None
    dataset = _dataset_from_spec(spec, bases)
    parts = pipeline.split_data(spec, dataset)
    train = [p for p in (parts.train, parts.val) if p is not None]
    test = [parts.test] if parts.test is not None else []
    x = np.concatenate([p.x for p in train + test])
    y = np.concatenate([p.y for p in train + test])
    held = np.zeros(len(x), bool)
    held[sum(len(p.x) for p in train) :] = True
    return Samples(x.reshape(len(x), -1), y, held, dataset.source), dataset.info.class_names


def _map_classes(y: np.ndarray, names: list[str] | None, model_classes, source: str):
    """Class indices of the data (into ``names``) -> indices into the model's classes."""
    if names is None or model_classes is None or list(names) == list(model_classes):
        return y
    names = [str(n) for n in names]
    if not set(names) & set(model_classes) and all(n.isdigit() for n in names):
        # Integer labels for a model with named classes (an .npz of y = 0, 1, 2): indices.
        lookup = np.array([int(n) for n in names])
        if lookup.max() < len(model_classes):
            return lookup[y]
    unknown = sorted(set(names) - set(model_classes))
    if unknown:
        raise DataError(
            f"{source}: classes {', '.join(unknown)} are not among the model's classes "
            f"({', '.join(model_classes)})"
        )
    lookup = np.array([model_classes.index(str(n)) for n in names])
    return lookup[y]


def _from_file(path: Path, spec, io) -> tuple[Samples, list[str] | None]:
    """``--data FILE``: a spec (its data), a CSV with a header, an .npz, or an .npy of inputs."""
    from ..data import core as datamod
    from ..data import csv_table
    from ..data.predict_inputs import read_inputs
    from ..spec.models import load_spec

    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        other = load_spec(path)
        found = _from_spec(other, [other.source.base_dir])
        if found is None:
            raise DataError(f"{path}: the spec names no data")
        return found
    if suffix == ".npy":
        return Samples(
            read_inputs(path, io.feature_names, io.features), None, None, str(path)
        ), None
    if suffix == ".npz":
        keys = (spec.data.x, spec.data.y) if isinstance(spec.data, NpzData) else ("x", "y")
        d = datamod.load_npz(path, *keys, spec.task)
        return Samples(d.x.reshape(len(d.x), -1), d.y, None, str(path)), d.info.class_names
    if suffix != ".csv":
        raise DataError(
            f"{path}: expected data as .csv (with a header row), .npz, .npy, or a spec .yaml "
            f"whose data to use, got '{suffix or 'no suffix'}'"
        )
    target = spec.data.target if isinstance(spec.data, CsvData) else io.target_names
    targets = [target] if isinstance(target, str) else list(target)
    if spec.task == "classification":
        target = targets[0]
    header = csv_table.read_header(path)
    if not set(targets) <= set(header):
        # Inputs only: the points are drawn without their classes or targets.
        return Samples(
            read_inputs(path, io.feature_names, io.features), None, None, str(path)
        ), None
    d = datamod.load_csv(path, target, io.feature_names, spec.task)
    return Samples(d.x, d.y, None, str(path)), d.info.class_names


def load_samples(spec, io, data=None, model_path: str | Path | None = None) -> Samples | None:
    """The points to draw with a model: ``data`` (``Samples``, or a file from ``--data``), else
    the data of the model's spec, split as in training; None when there are none.

    The embedded spec does not know where its spec file was: relative data paths are looked
    for beside the model, then in the working directory (``spec`` loaded from its file
    resolves them against that file's directory)."""
    if isinstance(data, Samples):
        return data
    if data is not None:
        samples, names = _from_file(Path(data), spec, io)
    else:
        if spec.source.file:
            bases = [spec.source.base_dir]
        else:
            bases = [Path(model_path).resolve().parent] if model_path else []
            bases.append(Path.cwd())
        found = _from_spec(spec, bases)
        if found is None:
            return None
        samples, names = found
    if samples.x.shape[1] != io.features:
        raise DataError(
            f"{samples.source}: has {samples.x.shape[1]} features per sample; the model takes "
            f"{io.features} ({', '.join(io.feature_names[:8])}{', ...' if io.features > 8 else ''})"
        )
    if samples.y is not None and spec.task == "classification":
        samples.y = _map_classes(samples.y, names, io.class_names, samples.source)
    return samples
