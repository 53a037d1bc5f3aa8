"""IOBinding: a model's input and outputs bound to buffers on its device (the GPU's memory on
CUDA), so that repeated runs copy nothing between host and device."""

from __future__ import annotations

import numpy as np

from .errors import RuntimeModelError

# dlpack.h's device types: where a framework's array lives (kDLCPU, kDLCUDA).
_DLPACK_DEVICES = {1: "cpu", 2: "cuda"}

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


class Bound:
    """A model bound to one input and its outputs on the model's device; made by
    ``Model.bind``.

    The batch runs in chunks of at most ``model.chunk_size`` rows, each bound to a slice of
    the same buffers (an address inside them), so a batch over 65535 rows also runs on CUDA
    without a copy. The buffers are shared by every ``run()``: one thread at a time.

    Attributes
    ----------
    input : the input ``OrtValue``, (batch, *input_shape) float32 on the device.
    outputs : output name -> ``OrtValue`` on the device, (batch, ...) each.
    chunks : the rows of each onnxruntime run, in order.
    """

    def __init__(self, model, x, keep_on_device: bool = False):
        ort = model._onnxruntime
        self.model, self.keep_on_device = model, keep_on_device
        kind = model.device
        self.input = _device_input(model, x)
        self._check_input()
        rows = self.input.shape()[0]
        self.outputs = {}
        dims = {}
        for out in model.session.get_outputs():
            rest = tuple(out.shape[1:])
            if out.type not in _DTYPES or not all(isinstance(d, int) for d in rest):
                raise RuntimeModelError(
                    f"output {out.name!r} is {out.type} of shape {out.shape}; IOBinding "
                    "expected a number type and fixed sizes after the batch"
                )
            dtype = _DTYPES[out.type]
            dims[out.name] = (rest, np.dtype(dtype))
            self.outputs[out.name] = ort.OrtValue.ortvalue_from_shape_and_type(
                [rows, *rest], dtype, kind, model.device_id
            )
        in_row = 4 * int(np.prod(model.input_shape))
        self.chunks, self._bindings = [], []
        for lo in range(0, rows, model.chunk_size):
            n = min(model.chunk_size, rows - lo)
            binding = model.session.io_binding()
            address = self.input.data_ptr() + lo * in_row
            shape = [n, *model.input_shape]
            binding.bind_input(model.input_name, kind, model.device_id, np.float32, shape, address)
            for name, (rest, dtype) in dims.items():
                row = dtype.itemsize * int(np.prod(rest))
                address = self.outputs[name].data_ptr() + lo * row
                binding.bind_output(name, kind, model.device_id, dtype, [n, *rest], address)
            self.chunks.append(n)
            self._bindings.append(binding)

    def _check_input(self) -> None:
        model, value = self.model, self.input
        shape, where = tuple(value.shape()), value.device_name().lower()
        want = ("batch", *model.input_shape)
        if value.data_type() != "tensor(float)" or shape[1:] != model.input_shape:
            raise RuntimeModelError(
                f"expected a float32 OrtValue or array of shape ({', '.join(map(str, want))}), got "
                f"{value.data_type()} of shape {shape}"
            )
        if where != model.device:
            raise RuntimeModelError(
                f"expected an OrtValue on the model's device ({model.device}), got one on {where}"
            )
        if shape[0] < 1:
            raise RuntimeModelError("expected at least one row to bind, got 0")

    def run(self) -> dict:
        """Run the model on what the input buffer holds now: outputs by name, as ``OrtValue``s
        on the device with ``keep_on_device``, else as NumPy arrays."""
        for binding in self._bindings:
            self.model.session.run_with_iobinding(binding)
        if self.keep_on_device:
            return dict(self.outputs)
        # On the CPU, .numpy() is a view of the buffer that the next run overwrites.
        copy = self.model.device == "cpu"
        return {
            name: value.numpy().copy() if copy else value.numpy()
            for name, value in self.outputs.items()
        }


def _device_input(model, x):
    """The input ``OrtValue`` of a binding: ``x`` itself, a view of a framework's array (torch,
    CuPy, JAX: anything with ``__dlpack__``) on the model's device, or a checked copy of
    anything else (NumPy arrays, lists)."""
    ort = model._onnxruntime
    if isinstance(x, ort.OrtValue):
        return x
    if not hasattr(x, "__dlpack__") or isinstance(x, np.ndarray):
        return model.to_device(x)
    kind, index = (int(v) for v in x.__dlpack_device__())
    where = _DLPACK_DEVICES.get(kind, f"DLPack device type {kind}")
    if where != model.device or (where == "cuda" and index != model.device_id):
        on = f"{where}:{index}" if where == "cuda" else where
        want = f"cuda:{model.device_id}" if model.device == "cuda" else model.device
        raise RuntimeModelError(
            f"expected an array on the model's device ({want}), got one on {on}; a copy to "
            "the device is the caller's to make (or pass NumPy: bind copies it there once)"
        )
    if where == "cpu":
        # Host memory is checked as any input is (NaN, shape, dtype); a float32 C-contiguous
        # array stays shared, not copied.
        return model.to_device(np.from_dlpack(x))
    if not hasattr(ort.OrtValue, "from_dlpack"):
        raise RuntimeModelError(
            f"onnxruntime {ort.__version__} cannot wrap a DLPack array (its OrtValue has no "
            "from_dlpack): upgrade onnxruntime-gpu, or pass an OrtValue"
        )
    try:
        return ort.OrtValue.from_dlpack(x)  # shares the memory: nothing is copied
    except (RuntimeError, TypeError, ValueError) as e:
        raise RuntimeModelError(
            f"cannot bind this array without a copy ({e}); expected a C-contiguous float32 "
            "array (torch: x.contiguous())"
        ) from None
