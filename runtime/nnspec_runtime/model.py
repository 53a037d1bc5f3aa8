"""Run an nnspec-exported ONNX model with onnxruntime, on the CPU or a CUDA GPU.

The model file is checked before onnxruntime opens it: ``wire.py`` reads its external-data
references, ``external.py`` refuses those that point outside the model's directory.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .binding import Bound
from .columns import RawColumns, cpu_only_nodes
from .device import (
    CPU,
    CUDA,
    MAX_CUDA_ROWS,
    SWAP,
    CudaOptions,
    cuda_build,
    install_hint,
    preload_cuda_libraries,
    session_config,
)
from .errors import INSTALL_ONNXRUNTIME, DeviceError, OnnxRuntimeMissing, RuntimeModelError
from .external import check_external
from .files import open_regular
from .versions import ModelVersions, check_onnxruntime, model_versions
from .wire import Corrupt, read_wire

# Bounded chunks bound the memory one run takes, and keep GPU kernels inside the batch sizes
# they support (on CUDA never over MAX_CUDA_ROWS: cuDNN's MaxPool failed with
# CUDNN_STATUS_NOT_SUPPORTED at batch 65536 on an H200).
DEFAULT_CHUNK = 16384
# Images are large rows: a chunk also holds at most this many input bytes (434 AlexNet images of
# 3x227x227 float32), so that intermediate activations stay in memory too.
CHUNK_BYTES = 2**28
# onnxruntime drops initializers that no node uses one by one, in quadratic time (64,000 take
# 15 s, 128,000 47 s): a model with more than this many is refused before it opens.
MAX_UNUSED_INITIALIZERS = 1024


@dataclass(frozen=True)
class Prediction:
    """Classification: ``labels`` (class names), ``label_indices``, ``probabilities``
    (batch, classes). Regression: ``values`` (batch, outputs)."""

    task: str
    probabilities: np.ndarray | None = None
    label_indices: np.ndarray | None = None
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    values: np.ndarray | None = None
    target_names: list[str] | None = None


def _ort():
    try:
        import onnxruntime
    except ImportError as e:
        if e.name != "onnxruntime":
            raise  # onnxruntime is there but a library of its own failed: its own message
        raise OnnxRuntimeMissing(
            f"onnxruntime is not installed (neither onnxruntime nor onnxruntime-gpu): "
            f"{INSTALL_ONNXRUNTIME}"
        ) from None

    # Uninstalling one of onnxruntime and onnxruntime-gpu after both were installed deletes
    # files that the other shares (they write the same directory): a namespace package is left.
    if not hasattr(onnxruntime, "InferenceSession"):
        raise DeviceError(
            f"the onnxruntime package in {list(getattr(onnxruntime, '__path__', []))} is "
            "broken (expected onnxruntime.InferenceSession, got a package without it), as "
            "uninstalling onnxruntime or onnxruntime-gpu while both are installed leaves it; "
            f"reinstall one of them: {SWAP}"
        )
    return onnxruntime


def _cuda_available(ort) -> bool:
    return CUDA in ort.get_available_providers()


def _session(ort, model: bytes | str, providers: list, threads: int | None = None):
    options = ort.SessionOptions()
    if threads is not None:
        # Several sessions on one machine (one per Dask worker process) would each start a
        # pool of one thread per core: capped, workers x threads stay within the cores.
        options.intra_op_num_threads = threads
    # The session's own log: errors only. onnxruntime-gpu's default logger still prints its
    # warnings (a harmless "No registered plugin EP device found" on every CUDA session, and
    # the CUDA libraries' load errors), which stay: they say why CUDA did not start.
    options.log_severity_level = 3
    # A provider list without the CPU provider (strict=True) turns off the CPU fallback.
    for key, value in session_config(providers).items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(model, sess_options=options, providers=providers)


_KINDS = {
    "c": " (complex numbers)",
    "m": " (time spans)",
    "M": " (dates)",
    "U": " (strings)",
    "S": " (byte strings)",
    "O": " (Python objects)",
    "V": " (records)",
}


def _dims(shape) -> str:
    return ", ".join(str(d) for d in shape)


class Model:
    """An exported model, ready to predict.

    Parameters
    ----------
    model : path of a ``.onnx`` file, or its bytes.
    device : ``"cpu"``, ``"cuda"`` (an error if CUDA cannot be used; never a silent CPU
        fallback) or ``"auto"`` (CUDA when it works, else CPU; ``.device`` says which, and
        ``.fallback`` why CUDA was not used when onnxruntime has a CUDA provider).
    device_id : CUDA device ordinal.
    chunk_size : the most rows sent to onnxruntime in one run (default: 16384, fewer for
        large samples such as images, so that one chunk holds at most 256 MiB of input; on
        CUDA never over 65535, the most that cuDNN's pooling takes).
    strict : on CUDA, refuse the model unless every node runs on the GPU (onnxruntime's
        ``session.disable_cpu_ep_fallback``); by default a node without a CUDA kernel runs on
        the CPU. No effect on the CPU.
    use_tf32 : TF32 matrix products on CUDA (onnxruntime's default, about 1e-3 relative error);
        ``False`` keeps float32 accuracy (rtol 1e-4 against the CPU).
    gpu_mem_limit : the most bytes of GPU memory onnxruntime's arena may take (default: no
        limit).
    intra_op_threads : threads of onnxruntime's intra-op pool (default: onnxruntime's, one
        per core); set it when several processes share the machine's cores.

    A file that is empty, truncated or not ONNX, and external data that is missing, too short,
    or named outside the model's directory (``../x``, an absolute path, a symlink out) are a
    ``RuntimeModelError`` before onnxruntime opens anything. ``predict`` and ``run`` may be
    called from several threads at once (onnxruntime's ``run`` is thread-safe, and nothing
    else is shared).
    """

    def __init__(
        self,
        model: str | Path | bytes,
        device: str = "auto",
        *,
        device_id: int = 0,
        chunk_size: int | None = None,
        strict: bool = False,
        use_tf32: bool = True,
        gpu_mem_limit: int | None = None,
        intra_op_threads: int | None = None,
    ):
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
        if intra_op_threads is not None and intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be a positive integer, got {intra_op_threads}")
        self.intra_op_threads = intra_op_threads
        self.cuda_options = CudaOptions(device_id, use_tf32, gpu_mem_limit, strict)
        self.device_id = device_id
        self.path = None if isinstance(model, bytes) else Path(model)
        # onnxruntime opens a file itself, so that a model over 2 GB finds its external data
        # file (stored beside it under a relative name).
        data = model if isinstance(model, bytes) else self._check_readable(self.path)
        versions = self._check_contents(model if isinstance(model, bytes) else None)
        self._onnxruntime = ort = _ort()
        where = str(self.path) if self.path else "<model bytes>"
        check_onnxruntime(where, versions, getattr(ort, "__version__", "0"))
        #: IR version and opsets of the file (read from its bytes, before onnxruntime).
        self.versions = versions
        # Why device="auto" runs on the CPU although onnxruntime has a CUDA provider.
        self.fallback: str | None = None
        self.session, self.device = self._open(ort, data, device)
        self._describe()
        row_bytes = 4 * (self.n_features or 1)
        self.chunk_size = chunk_size or max(1, min(DEFAULT_CHUNK, CHUNK_BYTES // row_bytes))
        if self.device == "cuda":
            self.chunk_size = min(self.chunk_size, MAX_CUDA_ROWS)

    @staticmethod
    def _check_readable(path: Path) -> str:
        # A FIFO, a device or a directory is refused before it is opened: onnxruntime would
        # wait for a FIFO's writer, and read /dev/zero until memory runs out.
        with open_regular(path, "model file (.onnx)") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise RuntimeModelError(f"{path}: the file is empty; expected an ONNX model")
        return str(path)

    def _check_contents(self, data: bytes | None) -> ModelVersions:
        """A clear error for a truncated or damaged file, and for external data that is
        missing or outside the model's directory, before onnxruntime opens anything; the
        model's IR version and opsets."""
        where = str(self.path) if self.path else "<model bytes>"
        try:
            if data is not None:
                if not data:
                    raise RuntimeModelError(f"{where}: no bytes; expected an ONNX model")
                found = read_wire(data)
            else:
                with open_regular(self.path, "model file (.onnx)") as f:
                    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                        found = read_wire(m)
        except Corrupt as e:
            raise RuntimeModelError(
                f"{where}: not a loadable ONNX model: truncated, damaged or not ONNX at all "
                f"({e}); expected a whole .onnx file"
            ) from None
        except (OSError, ValueError) as e:
            raise RuntimeModelError(f"{where}: cannot read: {e}") from None
        unused = found.unused_initializers
        if unused > MAX_UNUSED_INITIALIZERS:
            raise RuntimeModelError(
                f"{where}: {unused:,} of its {len(found.initializers):,} initializers are used by "
                f"no node (at most {MAX_UNUSED_INITIALIZERS:,}), which onnxruntime would take "
                "minutes to drop; refused: remove them (onnx's optimizer or "
                "onnx.utils.Extractor) and try again"
            )
        check_external(where, self.path.parent if self.path else None, found.refs)
        return model_versions(found)

    def _open(self, ort, data: bytes | str, device: str):
        where = str(self.path) if self.path else "<model bytes>"
        cuda = _cuda_available(ort)
        if device == "cuda" and not cuda:
            raise DeviceError(
                "device='cuda' was asked for, but this onnxruntime "
                f"({getattr(ort, '__version__', '?')}) has no CUDA provider (available: "
                f"{', '.join(ort.get_available_providers())}); {install_hint()}"
            )
        if device != "cpu" and cuda:
            unloaded = preload_cuda_libraries(ort)

            def hint() -> str:  # only where CUDA was not had: it reads metadata and loads
                return install_hint(unloaded=unloaded, cuda_version=cuda_build(ort))

            try:
                session = self._new_session(ort, data, self.cuda_options.providers())
            except Exception as e:  # onnxruntime raises its own exception types
                if device == "cuda":
                    raise DeviceError(self._refusal(ort, data, where, e, hint())) from None
                self.fallback = f"the CUDA session failed: {e}"
            else:
                # onnxruntime falls back to the CPU provider, with only a logged error, when
                # the CUDA libraries or the GPU are missing: what it made is checked.
                got = session.get_providers()
                if got[0] == CUDA:
                    return session, "cuda"
                why = f"onnxruntime made a session on {got[0]} (expected {CUDA} first, got {got})"
                if device == "cuda":
                    raise DeviceError(f"{where}: device='cuda' was asked for, but {why}; {hint()}")
                self.fallback = f"{why}; {hint()}"
        try:
            return self._new_session(ort, data, [CPU]), "cpu"
        except Exception as e:
            raise RuntimeModelError(f"{where}: not a loadable ONNX model: {e}") from None

    def _new_session(self, ort, data, providers: list):
        # The thread cap only when one is asked for: the session is otherwise made exactly as
        # before (tests stand in for _session with its three arguments).
        if self.intra_op_threads is None:
            return _session(ort, data, providers)
        return _session(ort, data, providers, self.intra_op_threads)

    def _refusal(self, ort, data, where: str, error: Exception, hint: str) -> str:
        """Why a CUDA session could not be made: the message of its ``DeviceError``, ending
        with ``hint`` (what to do about the installation)."""
        if not self.cuda_options.strict:
            return f"{where}: the CUDA provider failed to start: {error}; {hint}"
        # A strict session is refused both when a node has no CUDA kernel and when CUDA does
        # not start at all (every node then falls to the CPU): a session with the CPU
        # fallback allowed tells the two apart.
        relaxed = replace(self.cuda_options, strict=False).providers()
        try:
            probe = _session(ort, data, relaxed)
            got = probe.get_providers()
        except Exception as e:
            return f"{where}: the CUDA provider failed to start: {e}; {hint}"
        if got[0] != CUDA:
            return (
                f"{where}: device='cuda' was asked for, but the CUDA provider did not start "
                f"(onnxruntime made a session on {got[0]}; strict=True then refuses it: "
                f"{error}); {hint}"
            )
        return (
            f"{where}: strict=True asks for every node on the GPU, but onnxruntime would run "
            f"some on the CPU, for want of a CUDA kernel{cpu_only_nodes(probe)} ({error}); "
            "strict=False lets them run there"
        )

    def _describe(self) -> None:
        inputs = self.session.get_inputs()
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        # A tabular model takes raw columns, one input each (columns.py); the others one array.
        self.columns = None
        if "nnspec_tabular" in self.metadata:
            self.columns = RawColumns(self.metadata["nnspec_tabular"], [i.name for i in inputs])
            self.input_name, self.input_shape, self.n_features = None, (), None
        elif len(inputs) != 1 or len(inputs[0].shape) < 2 or inputs[0].type != "tensor(float)":
            raise RuntimeModelError(
                "not an nnspec model: expected one float32 input of shape (batch, features) "
                f"or (batch, channels, height, width), got "
                f"{[(i.name, i.type, i.shape) for i in inputs]}"
            )
        else:
            self.input_name = inputs[0].name
            # One sample's shape: (features,) or (channels, height, width) for image models.
            self.input_shape = tuple(inputs[0].shape[1:])
            known = all(isinstance(d, int) for d in self.input_shape)
            self.n_features = int(np.prod(self.input_shape)) if known else None
        outputs = {o.name: o for o in self.session.get_outputs()}
        self.output_names = list(outputs)
        if {"probabilities", "label"} <= set(outputs):
            self.task = "classification"
        elif "prediction" in outputs:
            self.task = "regression"
        else:
            raise RuntimeModelError(
                "not an nnspec model: expected the outputs probabilities and label, or "
                f"prediction; got {', '.join(outputs)}"
            )
        self._check_outputs(outputs)
        self.class_names = self._names("nnspec_class_names")
        self.feature_names = self._names("nnspec_feature_names")
        if self.columns is not None:  # the raw columns, not the encoded ones
            self.feature_names = list(self.columns.names)
        self.target_names = self._names("nnspec_target_names")
        # nnspec writes these names into every model, before the metrics: a model of nnspec's
        # without them was cut short (a truncated file can still parse, when the cut falls
        # between two metadata entries), and would label its predictions wrongly.
        names = "nnspec_class_names" if self.task == "classification" else "nnspec_target_names"
        lost = [k for k in ("nnspec_feature_names", names) if k not in self.metadata]
        if "nnspec_version" in self.metadata and lost:
            where = str(self.path) if self.path else "<model bytes>"
            raise RuntimeModelError(
                f"{where}: not a loadable ONNX model: an nnspec model without its "
                f"{' and '.join(lost)} metadata, so probably a truncated file; expected a whole "
                ".onnx file"
            )
        checks = [(self.feature_names, self.n_features, "feature names", "input features")]
        if self.task == "classification":
            width = outputs["probabilities"].shape[1]
            checks.append((self.class_names, width, "class names", "probability columns"))
        for names, size, what, against in checks:
            if names is not None and isinstance(size, int) and len(names) != size:
                raise RuntimeModelError(
                    f"the model's metadata lists {len(names)} {what} for {size} {against}"
                )

    def _check_outputs(self, outputs: dict) -> None:
        """The outputs' types and ranks, as nnspec writes them: a graph from elsewhere that
        names its outputs alike but gives a float label, or a rank-1 probability, is refused
        here rather than mislabelling rows later."""
        want = {"probabilities": ("tensor(float)", 2), "label": ("tensor(int64)", 1)}
        if self.task == "regression":
            want = {"prediction": ("tensor(float)", 2)}
        for name, (type_, rank) in want.items():
            o = outputs[name]
            if o.type != type_ or len(o.shape) != rank:
                dims = "(batch, n)" if rank == 2 else "(batch,)"
                raise RuntimeModelError(
                    f"not an nnspec model: expected the output {name} as {type_} of shape "
                    f"{dims}, got {o.type} of rank {len(o.shape)} ({o.shape})"
                )

    def _names(self, key: str) -> list[str] | None:
        if key not in self.metadata:
            return None
        try:
            names = json.loads(self.metadata[key])
        except (ValueError, RecursionError):  # not JSON, or nested thousands deep
            names = None
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise RuntimeModelError(f"the model's metadata {key} is not a JSON list of names")
        return names

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def check_input(self, x) -> np.ndarray:
        """``x`` as a C-contiguous float32 array of the model's input shape, or a clear error.

        Image models take (batch, channels, height, width), or flat rows (batch, features)
        of the same size, which are reshaped (row-major, as NumPy and the training data do).
        """
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise RuntimeModelError(f"input is not an array of numbers: {e}") from None
        # Real numbers only (bool, int, uint, float): not complex, whose imaginary part would
        # be dropped; not timedelta64, which NumPy counts as an integer; not strings or objects.
        if arr.dtype.kind not in "biuf":
            raise RuntimeModelError(
                "expected numbers (float, int or bool), got an array of dtype "
                f"{arr.dtype}{_KINDS.get(arr.dtype.kind, '')}"
            )
        image, given = len(self.input_shape) > 1, arr.shape
        if image and arr.ndim == len(self.input_shape) and self.input_shape[0] == 1:
            arr = arr[:, None]  # one-channel images given as (batch, height, width)
        if image and arr.ndim == len(self.input_shape) + 1:
            if arr.shape[1:] != self.input_shape:
                raise RuntimeModelError(
                    f"expected images of shape (batch, {_dims(self.input_shape)}), got {given}"
                )
        elif arr.ndim != 2:
            also = f" or (batch, {_dims(self.input_shape)})" if image else ""
            raise RuntimeModelError(
                f"expected a 2-D array (batch, {self.n_features}){also}, got shape {arr.shape}"
            )
        elif self.n_features is not None and arr.shape[1] != self.n_features:
            raise RuntimeModelError(
                f"expected {self.n_features} features per row, got {arr.shape[1]}"
            )
        if image:
            arr = arr.reshape(len(arr), *self.input_shape)
        # Checked after the conversion: 1e39 is finite in float64 but inf in float32.
        with np.errstate(over="ignore"):
            arr = np.ascontiguousarray(arr, dtype=np.float32)
        # A sum is NaN or inf when any term is (inf - inf is NaN), and takes half the time of
        # isfinite's boolean array (0.4-0.7 against 0.7-1.3 ms for 4096 DBN rows here, which
        # a GPU runs in about 1 ms); the exact test runs only when the sum is not finite: to
        # locate the NaN, or to clear finite values whose sum overflowed.
        if not np.isfinite(np.einsum("i->", arr.reshape(-1))) and not np.isfinite(arr).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            if image:
                c, y, x_ = where[1:]
                at = f"sample {where[0]}, channel {c}, row {y}, column {x_}"
            else:
                at = f"row {where[0]}, column {where[1]}"
            raise RuntimeModelError(f"input has a NaN or inf (in float32) at {at}")
        return arr

    def check_columns(self, x) -> dict[str, np.ndarray]:
        """A tabular model's inputs (a DataFrame, a pyarrow Table, a dict of columns or a list
        of row dicts) as the graph's feeds, checked (see ``columns.py``)."""
        if self.columns is None:
            raise RuntimeModelError("this model takes one array, not named columns")
        return self.columns.feeds(x)

    def run(self, x) -> dict[str, np.ndarray]:
        """Raw outputs by name, for inputs as ``check_input`` takes them (a tabular model:
        as ``check_columns`` takes them); large batches run in chunks of ``chunk_size`` rows."""
        return self._run(self._feeds(x))

    def _feeds(self, x) -> dict[str, np.ndarray]:
        if self.columns is not None:
            return self.check_columns(x)
        return {self.input_name: self.check_input(x)}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(feeds.values())))
        parts = [
            self.session.run(None, {k: v[lo : lo + self.chunk_size] for k, v in feeds.items()})
            for lo in range(0, max(n, 1), self.chunk_size)
        ]
        if len(parts) == 1:  # one chunk: the outputs as onnxruntime made them, no copy
            return dict(zip(self.output_names, parts[0], strict=True))
        return {
            name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(self.output_names)
        }

    def to_device(self, x):
        """``x``, checked as ``check_input`` does, in an onnxruntime ``OrtValue`` on the
        model's device (copied to the GPU on CUDA; sharing the checked array on the CPU)."""
        self._one_array("to_device")
        arr = self.check_input(x)
        return self._onnxruntime.OrtValue.ortvalue_from_numpy(arr, self.device, self.device_id)

    def bind(self, x, *, keep_on_device: bool = False) -> Bound:
        """Bind an input and outputs on the model's device once, to run many times
        (``.run()``) without copies between host and device: onnxruntime's IOBinding.

        Parameters
        ----------
        x : an ``OrtValue`` on the model's device, float32 of shape (batch, *input_shape),
            whose contents the caller may change between runs (it is not checked for NaN:
            it may live on the GPU); a framework's array there (torch, CuPy, JAX: DLPack),
            wrapped without a copy; or anything ``check_input`` takes, copied there once.
        keep_on_device : ``run()`` returns the output ``OrtValue``s, left on the device,
            rather than NumPy copies.
        """
        self._one_array("bind")
        return Bound(self, x, keep_on_device)

    def _one_array(self, what: str) -> None:
        if self.columns is not None:
            raise RuntimeModelError(
                f"{what} takes models with one float32 input; this model takes raw columns "
                f"({', '.join(self.columns.names)}): use predict or run"
            )

    def run_bound(self, x, *, keep_on_device: bool = False) -> dict:
        """``run`` through IOBinding: raw outputs by name, as NumPy arrays or, with
        ``keep_on_device``, as ``OrtValue``s on the model's device (see ``bind``)."""
        return self.bind(x, keep_on_device=keep_on_device).run()

    def predict(self, x) -> Prediction:
        """Labels with class names and probabilities, or regression values."""
        feeds = self._feeds(x)
        out, rows = self._run(feeds), len(next(iter(feeds.values())))
        if self.task == "classification":
            idx, probs = out["label"], out["probabilities"]
            names = self.class_names or [str(i) for i in range(probs.shape[-1])]
            # What onnxruntime returned is checked too: a label out of range would index the
            # wrong class name (a negative one wraps round to the last).
            if probs.ndim != 2 or probs.shape != (rows, len(names)):
                raise RuntimeModelError(
                    f"the model returned probabilities of shape {probs.shape}; expected "
                    f"({rows}, {len(names)}): one row per input, one column per class"
                )
            if idx.dtype.kind not in "iu" or idx.shape != (rows,):
                raise RuntimeModelError(
                    f"the model returned labels of {idx.dtype} with shape {idx.shape}; expected "
                    f"integer class indices of shape ({rows},)"
                )
            if len(idx) and (idx.min() < 0 or idx.max() >= len(names)):
                bad = int(idx[(idx < 0) | (idx >= len(names))][0])
                raise RuntimeModelError(
                    f"the model returned the class index {bad}; expected 0 to {len(names) - 1} "
                    f"(it has {len(names)} classes)"
                )
            return Prediction(
                task="classification",
                probabilities=out["probabilities"],
                label_indices=idx,
                labels=np.asarray(names, dtype=object)[idx],
                class_names=names,
            )
        values = out["prediction"]
        if values.ndim != 2 or len(values) != rows or values.dtype.kind != "f":
            raise RuntimeModelError(
                f"the model returned predictions of {values.dtype} with shape {values.shape}; "
                f"expected floats of shape ({rows}, outputs)"
            )
        return Prediction(task="regression", values=values, target_names=self.target_names)
