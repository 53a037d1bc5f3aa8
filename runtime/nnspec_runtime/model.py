"""Run an nnspec-exported ONNX model with onnxruntime, on the CPU or a CUDA GPU."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DeviceError, RuntimeModelError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# Bounded chunks bound the memory one run takes, and keep GPU kernels inside the batch sizes
# they support (cuDNN's MaxPool failed with CUDNN_STATUS_NOT_SUPPORTED at batch 65536 on an H200).
DEFAULT_CHUNK = 16384
# Images are large rows: a chunk also holds at most this many input bytes (434 AlexNet images of
# 3x227x227 float32), so that intermediate activations stay in memory too.
CHUNK_BYTES = 2**28


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
    import onnxruntime

    return onnxruntime


def _cuda_available(ort) -> bool:
    return CUDA in ort.get_available_providers()


def _session(ort, model: bytes | str, providers: list):
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the plugin-EP warning is noise here
    return ort.InferenceSession(model, sess_options=options, providers=providers)


def _dims(shape) -> str:
    return ", ".join(str(d) for d in shape)


class Model:
    """An exported model, ready to predict.

    Parameters
    ----------
    model : path of a ``.onnx`` file, or its bytes.
    device : ``"cpu"``, ``"cuda"`` (an error if CUDA cannot be used; never a silent CPU
        fallback) or ``"auto"`` (CUDA when it works, else CPU; ``.device`` says which).
    device_id : CUDA device ordinal.
    chunk_size : the most rows sent to onnxruntime in one run (default: 16384, fewer for
        large samples such as images, so that one chunk holds at most 256 MiB of input).
    """

    def __init__(
        self,
        model: str | Path | bytes,
        device: str = "auto",
        *,
        device_id: int = 0,
        chunk_size: int | None = None,
    ):
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
        self.path = None if isinstance(model, bytes) else Path(model)
        # onnxruntime opens a file itself, so that a model over 2 GB finds its external data
        # file (stored beside it under a relative name).
        data = model if isinstance(model, bytes) else self._check_readable(self.path)
        ort = _ort()
        self.session, self.device = self._open(ort, data, device, device_id)
        self._describe()
        row_bytes = 4 * (self.n_features or 1)
        self.chunk_size = chunk_size or max(1, min(DEFAULT_CHUNK, CHUNK_BYTES // row_bytes))

    @staticmethod
    def _check_readable(path: Path) -> str:
        try:
            with path.open("rb"):
                return str(path)
        except FileNotFoundError:
            raise RuntimeModelError(f"{path}: no such model file") from None
        except IsADirectoryError:
            raise RuntimeModelError(f"{path}: is a directory; expected an .onnx file") from None
        except OSError as e:
            raise RuntimeModelError(f"{path}: cannot read: {e.strerror}") from None

    def _open(self, ort, data: bytes | str, device: str, device_id: int):
        where = str(self.path) if self.path else "<model bytes>"
        cuda = _cuda_available(ort)
        if device == "cuda" and not cuda:
            raise DeviceError(
                f"device='cuda' was asked for, but this onnxruntime ({ort.__version__}) has no "
                f"CUDA provider (available: {', '.join(ort.get_available_providers())}). "
                "Install onnxruntime-gpu in place of onnxruntime, or use device='cpu'"
            )
        if device != "cpu" and cuda:
            if hasattr(ort, "preload_dlls"):
                # Loads the CUDA and cuDNN libraries that pip installed beside onnxruntime-gpu.
                ort.preload_dlls()
            try:
                session = _session(ort, data, [(CUDA, {"device_id": device_id}), CPU])
            except Exception as e:  # onnxruntime raises its own exception types
                if device == "cuda":
                    raise DeviceError(f"{where}: the CUDA provider failed to start: {e}") from None
            else:
                on_cuda = session.get_providers()[0] == CUDA
                if device == "cuda" and not on_cuda:
                    raise DeviceError(
                        f"{where}: device='cuda' was asked for, but onnxruntime made a session "
                        f"on {session.get_providers()} (no usable GPU?)"
                    )
                return session, "cuda" if on_cuda else "cpu"
        try:
            return _session(ort, data, [CPU]), "cpu"
        except Exception as e:
            raise RuntimeModelError(f"{where}: not a loadable ONNX model: {e}") from None

    def _describe(self) -> None:
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) < 2 or inputs[0].type != "tensor(float)":
            raise RuntimeModelError(
                "not an nnspec model: expected one float32 input of shape (batch, features) "
                f"or (batch, channels, height, width), got "
                f"{[(i.name, i.type, i.shape) for i in inputs]}"
            )
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
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.class_names = self._names("nnspec_class_names")
        self.feature_names = self._names("nnspec_feature_names")
        self.target_names = self._names("nnspec_target_names")
        checks = [(self.feature_names, self.n_features, "feature names", "input features")]
        if self.task == "classification":
            width = outputs["probabilities"].shape[1]
            checks.append((self.class_names, width, "class names", "probability columns"))
        for names, size, what, against in checks:
            if names is not None and isinstance(size, int) and len(names) != size:
                raise RuntimeModelError(
                    f"the model's metadata lists {len(names)} {what} for {size} {against}"
                )

    def _names(self, key: str) -> list[str] | None:
        if key not in self.metadata:
            return None
        try:
            names = json.loads(self.metadata[key])
        except ValueError:
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
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.floating)
            or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_
        ):
            raise RuntimeModelError(f"expected numbers, got an array of dtype {arr.dtype}")
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
        if not np.isfinite(arr).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            if image:
                c, y, x_ = where[1:]
                at = f"sample {where[0]}, channel {c}, row {y}, column {x_}"
            else:
                at = f"row {where[0]}, column {where[1]}"
            raise RuntimeModelError(f"input has a NaN or inf (in float32) at {at}")
        return arr

    def run(self, x) -> dict[str, np.ndarray]:
        """Raw outputs by name, for inputs as ``check_input`` takes them; large batches run in
        chunks of ``chunk_size`` rows."""
        arr = self.check_input(x)
        parts = [
            self.session.run(None, {self.input_name: arr[lo : lo + self.chunk_size]})
            for lo in range(0, max(len(arr), 1), self.chunk_size)
        ]
        return {
            name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(self.output_names)
        }

    def predict(self, x) -> Prediction:
        """Labels with class names and probabilities, or regression values."""
        out = self.run(x)
        if self.task == "classification":
            idx = out["label"]
            names = self.class_names or [str(i) for i in range(out["probabilities"].shape[1])]
            return Prediction(
                task="classification",
                probabilities=out["probabilities"],
                label_indices=idx,
                labels=np.asarray(names, dtype=object)[idx],
                class_names=names,
            )
        return Prediction(
            task="regression", values=out["prediction"], target_names=self.target_names
        )
