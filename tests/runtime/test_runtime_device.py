"""GPU deployment logic, tested on the CPU: provider selection and refusal, strict sessions,
CUDA provider options, preloading, chunk caps, IOBinding, ``nnspec bench`` and the GPU proof.

CUDA itself is stood in for by ``FakeOrt``: onnxruntime as a CUDA machine shows it (CUDA in
the available providers, sessions that report the providers they were asked for), running
real CPU sessions underneath so that outputs are real.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import sys
import types

import numpy as np
import onnx
import onnxruntime
import pytest
from conftest import ROOT
from helpers import NO_CUDA_MESSAGE, cuda_state, mlp_spec

import nnspec
from nnspec.cli.commands import main
from nnspec_runtime import DeviceError, Model, RuntimeModelError
from nnspec_runtime import bench as rbench
from nnspec_runtime import device as rdevice
from nnspec_runtime import model as runtime_model

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    path = tmp_path_factory.mktemp("dev") / "mlp.onnx"
    nnspec.export(nnspec.build_network(mlp_spec(features=4, units=3)), path)
    return path


@pytest.fixture(scope="module")
def convnet(tmp_path_factory):
    path = tmp_path_factory.mktemp("dev") / "lenet.onnx"
    nnspec.export(nnspec.build_network(nnspec.load_spec(ROOT / "specs" / "lenet.yaml")), path)
    return path


class FakeSession:
    """A real CPU session that reports ``providers`` and records the rows of each run."""

    def __init__(self, real, providers):
        self._real, self._providers, self.rows = real, providers, []

    def get_providers(self):
        return list(self._providers)

    def run(self, names, feeds):
        self.rows.append(len(next(iter(feeds.values()))))
        return self._real.run(names, feeds)

    def __getattr__(self, name):
        return getattr(self._real, name)


class FakeOrt:
    """onnxruntime-gpu on a CUDA machine, as far as the runtime can tell.

    cuda: CUDA is in the available providers. active: a session asked for CUDA reports it
    (else it reports the CPU only, as onnxruntime does when the CUDA libraries are missing,
    and a strict session is refused). fail: making a session with CUDA raises. preload: the
    module has preload_dlls. unloaded: the libraries preload_dlls says it failed to load.
    no_kernel: a strict session is refused, as for a node without a CUDA kernel.
    """

    __version__ = "1.99.0"
    __name__ = "fake_onnxruntime"

    def __init__(self, cuda=True, active=True, fail=False, preload=True):
        self.cuda, self.active, self.fail = cuda, active, fail
        self.unloaded, self.no_kernel = [], False
        self.sessions = []  # (providers, SessionOptions) of each session made
        self.preloads = 0
        self.SessionOptions = onnxruntime.SessionOptions
        self.OrtValue = onnxruntime.OrtValue
        if preload:
            self.preload_dlls = self._preload

    def _preload(self):
        # What onnxruntime-gpu 1.31.1 prints without the nvidia-* wheels.
        for name in self.unloaded:
            print(f"Failed to load {name}: {name}: cannot open shared object file")
        if self.unloaded:
            print("Please follow https://onnxruntime.ai/docs/install/#cuda-and-cudnn")
        self.preloads += 1

    def get_available_providers(self):
        return [CUDA, CPU] if self.cuda else ["AzureExecutionProvider", CPU]

    def InferenceSession(self, model, sess_options=None, providers=None):
        self.sessions.append((providers, sess_options))
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        if self.fail and CUDA in names:
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        if names == [CUDA] and (self.no_kernel or not self.active):
            raise RuntimeError(
                "[ONNXRuntimeError] : 1 : FAIL : This session contains graph nodes that are "
                "assigned to the default CPU EP, but fallback to CPU EP has been explicitly "
                "disabled by the user."
            )
        # Its own options: the strict entry would make a CPU-only session refuse.
        real = onnxruntime.InferenceSession(model, providers=[CPU])
        # onnxruntime lists the CPU provider after CUDA even in a strict session.
        reported = [CUDA, CPU] if CUDA in names and self.active else [CPU]
        return FakeSession(real, reported)


@pytest.fixture
def fake(monkeypatch):
    """Install a FakeOrt (returned; its flags may be changed before a Model is made)."""
    ort = FakeOrt()
    monkeypatch.setattr(runtime_model, "_ort", lambda: ort)
    monkeypatch.setattr(rdevice, "_preloaded", False)
    monkeypatch.setattr(rdevice, "_unloaded", [])
    return ort


def _config(options, key="session.disable_cpu_ep_fallback"):
    try:
        return options.get_session_config_entry(key)
    except RuntimeError:  # onnxruntime raises for a key that was never set
        return None


# --- provider selection, options, strict --------------------------------------------------


def test_cuda_session_gets_explicit_providers_and_options(fake, mlp):
    model = Model(mlp, device="cuda", device_id=1, use_tf32=False, gpu_mem_limit=2**30)
    providers, options = fake.sessions[-1]
    assert providers == [
        (CUDA, {"device_id": "1", "use_tf32": "0", "gpu_mem_limit": str(2**30)}),
        CPU,
    ]
    assert _config(options) is None  # the CPU provider is listed: fallback allowed
    assert (model.device, model.provider, model.device_id) == ("cuda", CUDA, 1)
    assert fake.preloads == 1


def test_tf32_is_on_by_default_and_no_memory_limit(fake, mlp):
    Model(mlp, device="cuda")
    assert fake.sessions[-1][0][0] == (CUDA, {"device_id": "0", "use_tf32": "1"})


def test_strict_lists_cuda_alone_and_disables_cpu_fallback(fake, mlp):
    model = Model(mlp, device="cuda", strict=True)
    providers, options = fake.sessions[-1]
    # Listing the CPU provider too is refused by onnxruntime ("Conflicting session
    # configuration").
    assert providers == [(CUDA, {"device_id": "0", "use_tf32": "1"})]
    assert _config(options) == "1"
    assert model.device == "cuda"


def test_predict_cli_passes_strict_and_no_tf32(fake, mlp, tmp_path, capsys):
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((3, 4), dtype=np.float32))
    code = main(["predict", str(mlp), str(rows), "--device", "cuda", "--strict", "--no-tf32"])
    assert code == 0, capsys.readouterr().err
    providers, options = fake.sessions[-1]
    assert providers == [(CUDA, {"device_id": "0", "use_tf32": "0"})]
    assert _config(options) == "1"
    assert len(capsys.readouterr().out.strip().splitlines()) == 4  # header + 3 rows


def test_predict_cli_passes_device_id_and_memory_limit(fake, mlp, tmp_path, capsys):
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((2, 4), dtype=np.float32))
    argv = ["predict", str(mlp), str(rows), "--device", "cuda", "--device-id", "1"]
    assert main([*argv, "--gpu-mem-limit", "2GiB"]) == 0, capsys.readouterr().err
    providers, _ = fake.sessions[-1]
    assert providers[0] == (
        CUDA,
        {"device_id": "1", "use_tf32": "1", "gpu_mem_limit": str(2 * 2**30)},
    )
    for text, expected in [("512MiB", 2**29), ("1.5G", 3 * 2**29), ("4096", 4096), ("8gb", 2**33)]:
        main(["bench", str(mlp), "--device", "cuda", "--gpu-mem-limit", text, "--repeats", "1"])
        assert fake.sessions[-1][0][0][1]["gpu_mem_limit"] == str(expected)


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--gpu-mem-limit", "lots", "expected a number of bytes such as 8GiB, 512MiB or 10"),
        ("--gpu-mem-limit", "0", "expected a number of bytes"),
        ("--gpu-mem-limit", "1.5", "expected a number of bytes"),
        ("--device-id", "-1", "expected a GPU number (0, 1, ...), got '-1'"),
        ("--device-id", "cuda:1", "expected a GPU number"),
    ],
)
def test_device_flags_refuse_bad_values(mlp, capsys, flag, value, message):
    with pytest.raises(SystemExit) as e:
        main(["predict", str(mlp), "x.csv", flag, value])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_cpu_device_never_asks_for_cuda(fake, mlp):
    model = Model(mlp, device="cpu", strict=True)
    assert [p for p, _ in fake.sessions] == [[CPU]]
    assert fake.preloads == 0 and model.device == "cpu"


def test_auto_picks_cuda_when_it_is_active(fake, mlp):
    assert Model(mlp, device="auto").device == "cuda"
    assert fake.preloads == 1


def test_preload_runs_once_per_process(fake, mlp):
    Model(mlp, device="cuda")
    Model(mlp, device="auto")
    assert fake.preloads == 1


def test_onnxruntime_without_preload_dlls(fake, mlp):
    del fake.preload_dlls  # onnxruntime < 1.21
    assert Model(mlp, device="cuda").device == "cuda"


def test_a_failing_preload_leaves_the_decision_to_the_session(fake, mlp):
    def broken():
        raise OSError("libcudnn.so.9: cannot open shared object file")

    fake.preload_dlls = broken
    assert Model(mlp, device="cuda").device == "cuda"


def test_refused_when_the_session_is_not_on_cuda(fake, mlp):
    fake.active = False  # onnxruntime fell back to the CPU (CUDA libraries missing)
    with pytest.raises(DeviceError) as e:
        Model(mlp, device="cuda")
    msg = str(e.value)
    assert "expected CUDAExecutionProvider first, got ['CPUExecutionProvider']" in msg
    assert "\n" not in msg
    assert Model(mlp, device="auto").device == "cpu"


def test_auto_fallback_says_why_and_the_cli_notes_it(fake, mlp, tmp_path, capsys, monkeypatch):
    fake.active = False  # onnxruntime-gpu on a machine without a GPU
    monkeypatch.setattr(rdevice, "cuda_driver_error", lambda: "libcuda.so.1 did not load (x)")
    monkeypatch.setattr(rdevice, "onnxruntime_distributions", lambda: [("onnxruntime-gpu", "1")])
    model = Model(mlp, device="auto")
    assert model.device == "cpu"
    assert model.fallback.startswith(
        "onnxruntime made a session on CPUExecutionProvider (expected CUDAExecutionProvider "
        "first, got ['CPUExecutionProvider']); the NVIDIA driver is missing: libcuda.so.1"
    )
    assert Model(mlp, device="cpu").fallback is None
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((2, 4), dtype=np.float32))
    assert main(["predict", str(mlp), str(rows)]) == 0
    said = capsys.readouterr()
    assert len(said.out.strip().splitlines()) == 3  # header + 2 rows: the CSV is untouched
    assert said.err.startswith(f"note: {mlp}: --device auto runs it on the CPU, because onnx")
    assert said.err.endswith("(--device cpu does not try CUDA)\n")
    fake.active = True
    assert Model(mlp, device="auto").fallback is None
    main(["predict", str(mlp), str(rows)])
    assert capsys.readouterr().err == ""


def test_cuda_start_failure_is_a_device_error(fake, mlp):
    fake.fail = True
    for strict in (False, True):
        with pytest.raises(DeviceError, match="the CUDA provider failed to start: CUDA fail"):
            Model(mlp, device="cuda", strict=strict)
    # auto goes on with a CPU session of its own.
    model = Model(mlp, device="auto")
    assert model.device == "cpu" and fake.sessions[-1][0] == [CPU]
    failure = "CUDA failure 100: no CUDA-capable device is detected"
    assert model.fallback == f"the CUDA session failed: {failure}"


def test_unloaded_cuda_libraries_are_named_not_printed(fake, mlp, capsys, monkeypatch):
    # onnxruntime-gpu 1.31.1 without the nvidia-* wheels, as seen on a machine with no GPU:
    # preload_dlls prints what it could not load and the session falls back to the CPU.
    fake.active = False
    fake.unloaded = ["libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10"]
    monkeypatch.setattr(rdevice, "onnxruntime_distributions", lambda: [("onnxruntime-gpu", "1")])
    monkeypatch.setattr(runtime_model, "cuda_build", lambda ort: "13.0")
    monkeypatch.setattr(rdevice, "cuda_driver_error", lambda: None)
    assert Model(mlp, device="auto").device == "cpu"
    with pytest.raises(DeviceError) as e:
        Model(mlp, device="cuda")
    assert capsys.readouterr().out == ""  # kept for the message instead
    assert fake.preloads == 1
    msg = str(e.value)
    assert "made a session on CPUExecutionProvider" in msg
    assert (
        "the CUDA 13 libraries that onnxruntime-gpu needs did not load (libcublasLt.so.13, "
        'libcublas.so.13, libcurand.so.10): pip install "onnxruntime-gpu[cuda,cudnn]"'
    ) in msg


def test_strict_refusal_says_whether_cuda_started(fake, mlp):
    # CUDA did not start: every node fell to the CPU, which strict forbids. The message must
    # not blame a missing kernel.
    fake.active = False
    with pytest.raises(DeviceError) as e:
        Model(mlp, device="cuda", strict=True)
    msg = str(e.value)
    assert "the CUDA provider did not start (onnxruntime made a session on CPU" in msg
    assert "CUDA kernel" not in msg and "fallback to CPU EP has been explicitly" in msg
    # CUDA starts, but a node would run on the CPU.
    fake.active, fake.no_kernel = True, True
    with pytest.raises(DeviceError) as e:
        Model(mlp, device="cuda", strict=True)
    msg = str(e.value)
    assert "strict=True asks for every node on the GPU, but onnxruntime would run some" in msg
    assert "for want of a CUDA kernel" in msg and "strict=False lets them run there" in msg
    # The relaxed probe asked for CUDA with the same options, CPU fallback allowed.
    assert fake.sessions[-1][0] == [(CUDA, {"device_id": "0", "use_tf32": "1"}), CPU]
    assert Model(mlp, device="cuda").device == "cuda"


def test_no_cuda_provider_names_the_installation(fake, mlp, monkeypatch):
    fake.cuda = False
    monkeypatch.setattr(rdevice, "onnxruntime_distributions", lambda: [("onnxruntime", "1.32")])
    with pytest.raises(DeviceError, match=r"has no CUDA provider \(available: Azure") as e:
        Model(mlp, device="cuda")
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install" in str(e.value)
    assert fake.preloads == 0


def test_both_distributions_installed_are_named(fake, mlp, monkeypatch):
    fake.cuda = False  # the CPU build's files were written last
    both = [("onnxruntime", "1.32.0"), ("onnxruntime-gpu", "1.31.1")]
    monkeypatch.setattr(rdevice, "onnxruntime_distributions", lambda: both)
    with pytest.raises(DeviceError) as e:
        Model(mlp, device="cuda")
    msg = str(e.value)
    assert "onnxruntime 1.32.0 and onnxruntime-gpu 1.31.1 are installed" in msg
    assert "write the same onnxruntime/ directory" in msg
    assert rdevice.SWAP in msg


def test_install_hints(monkeypatch):
    gpu = [("onnxruntime-gpu", "1.31.1")]
    monkeypatch.setattr(rdevice, "cuda_driver_error", lambda: None)  # as with a driver
    assert "NVIDIA driver" in rdevice.install_hint(gpu)
    assert "check the NVIDIA driver (nvidia-smi) and the CUDA 13 and cuDNN" in (
        rdevice.install_hint(gpu, cuda_version="13.0")
    )
    missing = rdevice.install_hint(gpu, unloaded=["libcudnn.so.9"])
    assert "the CUDA libraries that onnxruntime-gpu needs did not load (libcudnn.so.9)" in missing
    assert "in place of onnxruntime" in rdevice.install_hint([("onnxruntime", "1.32.0")])


def test_a_missing_driver_is_named(monkeypatch):
    # onnxruntime-gpu 1.31.1 with its CUDA wheels on a machine without a GPU: the provider's
    # library fails on libcuda.so.1 and the session falls back to the CPU.
    def load(name):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    error = rdevice.cuda_driver_error(load)
    assert error.endswith(
        "did not load (libcuda.so.1: cannot open shared object file: No such file or directory)"
    ) or error.startswith("nvcuda.dll")
    assert rdevice.cuda_driver_error(lambda name: None) is None
    monkeypatch.setattr(rdevice, "cuda_driver_error", lambda: "libcuda.so.1 did not load (x)")
    hint = rdevice.install_hint([("onnxruntime-gpu", "1.31.1")])
    assert hint.startswith("the NVIDIA driver is missing: libcuda.so.1 did not load (x); a ")
    assert "device='cpu'" in hint and "libraries" not in hint
    # Neither driver nor libraries (a bare CPU machine): the driver first, then the libraries.
    hint = rdevice.install_hint([("onnxruntime-gpu", "1.31.1")], ["libcublas.so.13"], "13.0")
    assert hint.startswith("the NVIDIA driver is missing: libcuda.so.1 did not load (x); a ")
    assert hint.endswith(
        "; the CUDA 13 libraries that onnxruntime-gpu needs did not load either "
        '(libcublas.so.13): pip install "onnxruntime-gpu[cuda,cudnn]" brings them as nvidia-* '
        "wheels, or put CUDA 13 and cuDNN on LD_LIBRARY_PATH"
    )


def test_cuda_build_of_the_installed_onnxruntime():
    # The CPU build's build_and_package_info has no cuda_version; the GPU build's says "13.0".
    expected = "13.0" if onnxruntime.get_device() == "GPU" else None
    assert rdevice.cuda_build(onnxruntime) == expected
    assert rdevice.cuda_build(types.ModuleType("not_onnxruntime")) is None


def test_installed_distributions_are_read_from_metadata():
    from importlib.metadata import PackageNotFoundError, version

    found = rdevice.onnxruntime_distributions()
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            installed = version(name)
        except PackageNotFoundError:
            assert name not in dict(found)
        else:
            assert (name, installed) in found
    assert found, "the onnxruntime that this test imports comes from some distribution"


def test_a_broken_onnxruntime_package_is_named(monkeypatch, mlp):
    # What uninstalling one of the two distributions leaves: a directory without the module.
    monkeypatch.setitem(sys.modules, "onnxruntime", types.ModuleType("onnxruntime"))
    with pytest.raises(DeviceError, match="onnxruntime package .* is broken.*pip uninstall"):
        Model(mlp, device="cpu")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"device_id": -1}, "device_id must be a non-negative integer, got -1"),
        ({"device_id": True}, "device_id must be a non-negative integer"),
        ({"use_tf32": "no"}, "use_tf32 must be True or False, got 'no'"),
        ({"gpu_mem_limit": 0}, "gpu_mem_limit must be a positive number of bytes, got 0"),
        ({"strict": 1}, "strict must be True or False, got 1"),
    ],
)
def test_bad_options_are_clear_errors(mlp, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Model(mlp, device="cpu", **kwargs)


# --- chunks on CUDA ---------------------------------------------------------------------


def test_cuda_chunks_never_exceed_65535_rows(fake, mlp):
    x = np.random.default_rng(0).normal(size=(70000, 4))
    model = Model(mlp, device="cuda", chunk_size=100_000)
    assert model.chunk_size == 65535
    out = model.run(x)
    assert model.session.rows == [65535, 4465]
    cpu = Model(mlp, device="cpu", chunk_size=100_000)
    np.testing.assert_array_equal(out["probabilities"], cpu.run(x)["probabilities"])
    assert cpu.chunk_size == 100_000  # the cap is CUDA's, not the CPU's
    assert Model(mlp, device="cuda").chunk_size == runtime_model.DEFAULT_CHUNK


def test_even_chunks():
    assert rbench.even_chunks(65536, 65535) == 32768
    assert rbench.even_chunks(70000, 65535) == 35000
    assert rbench.even_chunks(65535, 65535) == 65535
    assert rbench.even_chunks(7, 65535) == 7


# --- IOBinding on the CPU ---------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 7])
def test_iobinding_matches_run(mlp, convnet, chunk):
    rng = np.random.default_rng(1)
    for path, shape in ((mlp, (50, 4)), (convnet, (20, 1, 28, 28))):
        model = Model(path, device="cpu", chunk_size=chunk)
        x = rng.normal(size=shape)
        want, got = model.run(x), model.run_bound(x)
        assert set(got) == set(want)
        for name in want:
            assert got[name].dtype == want[name].dtype
            np.testing.assert_array_equal(got[name], want[name])
    assert model.bind(x).chunks == ([20] if chunk is None else [7, 7, 6])


def test_bound_input_is_rebound_in_place_and_outputs_stay_on_the_device(mlp):
    model = Model(mlp, device="cpu", chunk_size=4)
    x = np.random.default_rng(2).normal(size=(10, 4)).astype(np.float32)
    value = onnxruntime.OrtValue.ortvalue_from_numpy(x, "cpu", 0)
    bound = model.bind(value, keep_on_device=True)
    first = {k: v.numpy().copy() for k, v in bound.run().items()}
    np.testing.assert_array_equal(first["probabilities"], model.run(x)["probabilities"])
    x[:] = x[::-1]  # the caller writes new inputs into the bound buffer
    out = bound.run()
    assert isinstance(out["probabilities"], onnxruntime.OrtValue)
    assert out["probabilities"].device_name().lower() == "cpu"
    np.testing.assert_array_equal(out["probabilities"].numpy(), first["probabilities"][::-1])


def test_bound_numpy_outputs_are_copies(mlp):
    model = Model(mlp, device="cpu")
    x = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    bound = model.bind(x)
    first = bound.run()["probabilities"]
    saved = first.copy()
    bound.input.numpy()[:] = 0.0  # on the CPU the OrtValue shares the checked array
    second = bound.run()["probabilities"]
    np.testing.assert_array_equal(first, saved)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize(
    "value,match",
    [
        (np.zeros((3, 5), np.float32), r"a float32 OrtValue or array of shape \(batch, 4\), got "),
        (np.zeros((3, 4), np.float64), "got tensor\\(double\\)"),
        (np.zeros((0, 4), np.float32), "expected at least one row"),
    ],
)
def test_bad_bound_inputs(mlp, value, match):
    model = Model(mlp, device="cpu")
    with pytest.raises(RuntimeModelError, match=match):
        model.bind(onnxruntime.OrtValue.ortvalue_from_numpy(value, "cpu", 0))


def test_bound_input_on_another_device_is_refused(mlp):
    model = Model(mlp, device="cpu")
    model.device = "cuda"  # as if the model ran on CUDA and a CPU OrtValue came
    value = onnxruntime.OrtValue.ortvalue_from_numpy(np.zeros((2, 4), np.float32), "cpu", 0)
    with pytest.raises(RuntimeModelError, match=r"on the model's device \(cuda\), got one on cpu"):
        model.bind(value)


class Foreign:
    """Another framework's array, as far as DLPack goes (torch, CuPy and JAX arrays have the
    same two methods): NumPy memory, claimed to be on ``device``."""

    def __init__(self, array, device=(1, 0)):
        self.array, self.device = array, device

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.device


def test_a_framework_array_on_the_host_is_checked_and_shared(mlp):
    model = Model(mlp, device="cpu")
    x = np.random.default_rng(4).normal(size=(6, 4)).astype(np.float32)
    bound = model.bind(Foreign(x), keep_on_device=True)
    assert bound.input.data_ptr() == x.ctypes.data  # no copy
    np.testing.assert_array_equal(
        bound.run()["probabilities"].numpy(), model.run(x)["probabilities"]
    )
    x[:] = x[::-1]  # written through the framework's array: the next run sees it
    got = bound.run()["probabilities"]
    # Outputs left on the device go back out through DLPack without a copy as well.
    view = np.from_dlpack(got)
    assert view.ctypes.data == got.data_ptr()
    np.testing.assert_array_equal(view, model.run(x)["probabilities"])
    with pytest.raises(RuntimeModelError, match=r"NaN or inf \(in float32\) at row 1, column 2"):
        x[1, 2] = np.nan
        model.bind(Foreign(x))


def test_torch_tensors_in_and_out_without_copies(mlp):
    torch = pytest.importorskip("torch")
    model = Model(mlp, device="cpu")
    x = torch.randn(5, 4)
    bound = model.bind(x, keep_on_device=True)
    assert bound.input.data_ptr() == x.data_ptr()
    out = torch.from_dlpack(bound.run()["probabilities"])
    assert out.data_ptr() == bound.outputs["probabilities"].data_ptr()
    np.testing.assert_array_equal(out.numpy(), model.run(x.numpy())["probabilities"])
    # On the host a float64 tensor is converted as NumPy input is: a float32 copy.
    x64 = x.double()
    again = model.bind(x64)
    assert again.input.data_ptr() != x64.data_ptr()
    np.testing.assert_allclose(again.run()["probabilities"], out.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "device,device_id,array_device,match",
    [
        ("cpu", 0, (2, 0), r"on the model's device \(cpu\), got one on cuda:0; a copy"),
        ("cuda", 0, (1, 0), r"on the model's device \(cuda:0\), got one on cpu"),
        ("cuda", 1, (2, 0), r"on the model's device \(cuda:1\), got one on cuda:0"),
        ("cpu", 0, (8, 0), r"got one on DLPack device type 8"),
    ],
)
def test_a_framework_array_elsewhere_is_refused(mlp, device, device_id, array_device, match):
    model = Model(mlp, device="cpu")
    model.device, model.device_id = device, device_id  # as if it ran there
    with pytest.raises(RuntimeModelError, match=match):
        model.bind(Foreign(np.zeros((2, 4), np.float32), array_device))


def test_a_framework_array_on_the_gpu_is_wrapped_not_copied(fake, mlp, monkeypatch):
    # The CUDA branch, on the CPU: FakeOrt reports CUDA, the array claims cuda:0, and
    # OrtValue.from_dlpack wraps its (host) memory as it would a GPU tensor's.
    model = Model(mlp, device="cuda")
    x = np.ones((3, 4), np.float32)
    wrapped = []

    class Values:
        @staticmethod
        def from_dlpack(array):
            wrapped.append(array)
            value = onnxruntime.OrtValue.from_dlpack(array.array)
            return types.SimpleNamespace(
                shape=value.shape,
                data_type=value.data_type,
                device_name=lambda: "Cuda",
                data_ptr=value.data_ptr,
            )

    monkeypatch.setattr(fake, "OrtValue", Values)
    from nnspec_runtime import binding

    array = Foreign(x, (2, 0))
    value = binding._device_input(model, array)
    assert wrapped == [array] and value.data_ptr() == x.ctypes.data
    Values.from_dlpack = staticmethod(lambda a: (_ for _ in ()).throw(RuntimeError("strided")))
    with pytest.raises(RuntimeModelError, match=r"without a copy \(strided\); expected a C-c"):
        binding._device_input(model, array)
    del Values.from_dlpack  # an onnxruntime older than DLPack support
    with pytest.raises(RuntimeModelError, match="cannot wrap a DLPack array"):
        binding._device_input(model, array)


def test_to_device_checks_inputs(mlp):
    model = Model(mlp, device="cpu")
    with pytest.raises(RuntimeModelError, match="NaN or inf"):
        model.to_device([[1.0, np.nan, 0.0, 0.0]])
    value = model.to_device([[1, 2, 3, 4]])
    assert value.shape() == [1, 4] and value.data_type() == "tensor(float)"


# --- benchmark ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["run", "session", "iobinding"])
def test_measure(mlp, path):
    model = Model(mlp, device="cpu")
    r = rbench.measure(model, 64, path, repeats=7, warmup=1)
    assert len(r.seconds) == 7 and all(s > 0 for s in r.seconds)
    assert r.throughput == pytest.approx(64 * 7 / sum(r.seconds))
    assert 0 < r.latency_ms(50) <= r.latency_ms(90) <= r.latency_ms(99)
    d = r.as_dict()
    assert d["runs"] == 7 and d["path"] == path and d["samples_per_s"] > 0


def test_measure_stops_at_max_seconds(mlp):
    r = rbench.measure(Model(mlp, device="cpu"), 8, repeats=10**6, warmup=0, max_seconds=0.01)
    assert 3 <= len(r.seconds) < 10**6


def test_session_path_is_one_chunk(mlp):
    with pytest.raises(ValueError, match="expected batch <= 16, got 17"):
        rbench.measure(Model(mlp, device="cpu", chunk_size=16), 17, "session")


def test_bench_inputs_repeat_a_block(convnet):
    x = rbench.inputs(Model(convnet, device="cpu"), 2500)
    assert x.shape == (2500, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(x[1024:2048], x[:1024])


# batch, path, samples/s, p50, p90, p99, runs
_ROW = re.compile(r"^\s*(\d+)\s+(run|iobinding)\s+([\d,]+)" + r"\s+([\d.]+)" * 3 + r"\s+(\d+)")


def test_bench_cli_on_cpu(mlp, capsys):
    assert main(["bench", str(mlp), "--device", "cpu", "--batch", "1", "32", "--repeats", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{mlp}: cpu (CPUExecutionProvider), Model.run")
    rows = [_ROW.match(line) for line in lines[2:]]
    assert [(int(m[1]), m[2], int(m[7])) for m in rows] == [(1, "run", 4), (32, "run", 4)]
    for m in rows:
        rate, p50, p90, p99 = float(m[3].replace(",", "")), *map(float, m.groups()[3:6])
        assert rate > 0 and 0 < p50 <= p90 <= p99


def test_bench_cli_iobinding_json(mlp, capsys):
    argv = ["bench", str(mlp), "--device", "cpu", "--batch", "100", "--iobinding"]
    assert main([*argv, "--repeats", "3", "--chunk-size", "40", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["path"] == "iobinding" and result["batch"] == 100
    assert result["chunk_size"] == 40 and result["runs"] == 3 and result["samples_per_s"] > 0


@pytest.mark.skipif(cuda_state() == "works", reason="CUDA works here")
def test_bench_cli_cuda_without_gpu_is_exit_2(mlp, capsys):
    assert main(["bench", str(mlp), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    # A CPU build has no CUDA provider; onnxruntime-gpu without a GPU makes a CPU session.
    assert err.startswith("error: ") and NO_CUDA_MESSAGE[cuda_state()] in err
    assert "device='cuda' was asked for" in err and err.count("\n") == 1


def test_bench_cli_bad_batch_is_exit_2(mlp, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", str(mlp), "--batch", "0"])
    assert e.value.code == 2
    assert "--batch: expected a positive integer, got '0'" in capsys.readouterr().err


# --- the GPU proof script, in its CPU smoke mode ------------------------------------------


def _gpu_proof(monkeypatch):
    """bench/ runs from a checkout and is not installed: import it from the repository root
    (CI runs `pytest`, which does not put the working directory on the path)."""
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import gpu_proof

    return gpu_proof


def test_gpu_proof_smoke_on_cpu(tmp_path, capsys, monkeypatch):
    gpu_proof = _gpu_proof(monkeypatch)

    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\n## GPU\n\nold numbers\n\n## CLI latency\n\nkept\n")
    out = tmp_path / "proof.json"
    code = gpu_proof.main(
        ["--device", "cpu", "--quick", "--models", "lenet", "--doc", str(doc), "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["parity"]["lenet"]["fp32"]["pass"]
    assert report["chunking"][0]["runs"] == [1000, 1000, 500]
    assert {(t["batch"], t["path"]) for t in report["timings"]} == {
        (b, p) for b in (1, 64) for p in ("run", "session", "iobinding")
    }
    assert all(t["samples_per_s"] > 0 for t in report["timings"])
    text = doc.read_text()
    assert "old numbers" not in text and text.count("## GPU") == 1
    assert text.startswith("# Performance\n") and text.endswith("## CLI latency\n\nkept\n")
    assert "| lenet | cpu | 64 | iobinding |" in text


def test_gpu_proof_section_is_appended_when_missing(tmp_path, monkeypatch):
    gpu_proof = _gpu_proof(monkeypatch)

    doc = tmp_path / "p.md"
    doc.write_text("# Performance\n\n## Other\n\nx\n")
    gpu_proof.replace_section(doc, "## GPU\n\nnew\n")
    assert doc.read_text() == "# Performance\n\n## Other\n\nx\n\n## GPU\n\nnew\n"
    gpu_proof.replace_section(doc, "## GPU\n\nnewer\n")
    assert doc.read_text() == "# Performance\n\n## Other\n\nx\n\n## GPU\n\nnewer\n"


def test_gpu_proof_apply_puts_a_section_in_place(tmp_path, capsys, monkeypatch):
    gpu_proof = _gpu_proof(monkeypatch)

    doc, section = tmp_path / "p.md", tmp_path / "s.md"
    doc.write_text("# P\n\n## GPU\n\nold\n\n## Next\n\nn\n")
    section.write_text("## GPU\n\nfrom the GPU machine\n")
    assert gpu_proof.main(["--apply", str(section), "--doc", str(doc)]) == 0
    assert doc.read_text() == "# P\n\n## GPU\n\nfrom the GPU machine\n\n## Next\n\nn\n"
    section.write_text("# not a section\n")
    with pytest.raises(SystemExit):
        gpu_proof.main(["--apply", str(section), "--doc", str(doc)])
    assert "expected a file that starts with '## GPU'" in capsys.readouterr().err


def test_gpu_proof_records_a_failing_model_and_goes_on(tmp_path, capsys, monkeypatch):
    gpu_proof = _gpu_proof(monkeypatch)
    prove = gpu_proof.prove

    def flaky(report, Model, name, path, args):
        if name == "dbn":
            raise MemoryError("CUDA out of memory (as a GPU run might)")
        prove(report, Model, name, path, args)

    monkeypatch.setattr(gpu_proof, "prove", flaky)
    section, out = tmp_path / "s.md", tmp_path / "proof.json"
    argv = ["--device", "cpu", "--quick", "--models", "dbn,lenet"]
    code = gpu_proof.main(argv + ["--section", str(section), "--json", str(out)])
    assert code == 1
    report = json.loads(out.read_text())
    assert report["errors"] == {"dbn": "MemoryError: CUDA out of memory (as a GPU run might)"}
    assert not report["pass"] and report["parity"]["lenet"]["pass"]  # lenet still ran
    text = section.read_text()
    assert "**dbn stopped by an error**: `MemoryError: CUDA out of memory" in text
    assert "| lenet | cpu | 64 | run |" in text
    assert "SOME CHECKS FAILED" in capsys.readouterr().out


def test_gpu_proof_stops_at_once_without_cuda(fake, tmp_path, capsys, monkeypatch):
    gpu_proof = _gpu_proof(monkeypatch)
    fake.active = False  # onnxruntime-gpu without a usable GPU
    monkeypatch.setattr(gpu_proof, "nvidia_smi", lambda: ("none found", "n/a"))
    doc, out = tmp_path / "p.md", tmp_path / "proof.json"
    argv = ["--device", "cuda", "--models", "lenet", "--doc", str(doc), "--json", str(out)]
    assert gpu_proof.main(argv) == 2
    said = capsys.readouterr().out
    assert "the GPU proof cannot run: " in said and "made a session on CPUExecutionProvider" in said
    assert not doc.exists() and not out.exists()


def test_gpu_peers_rebuild_the_dbn_by_hand(tmp_path, monkeypatch):
    _gpu_proof(monkeypatch)
    from bench import gpu_peers

    path = tmp_path / "dbn.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["compile", str(ROOT / "specs" / "dbn.yaml"), "-o", str(path)]) == 0
    chain = gpu_peers.dense_chain(path)
    assert [(w.shape, b.shape, act) for w, b, act in chain["layers"]] == [
        ((784, 500), (500,), "Sigmoid"),
        ((500, 500), (500,), "Sigmoid"),
        ((500, 2000), (2000,), "Sigmoid"),
        ((2000, 10), (10,), "Softmax"),
    ]
    assert chain["mean"].shape == chain["scale"].shape == (784,)
    hand = onnxruntime.InferenceSession(gpu_peers.hand_built(chain), providers=[CPU])
    assert [o.name for o in hand.get_outputs()] == ["y"]
    assert {n.op_type for n in onnx.load_from_string(gpu_peers.hand_built(chain)).graph.node} == {
        "Gemm",
        "Sigmoid",
        "Softmax",
    }
    x = np.random.default_rng(1).random((16, 784), dtype=np.float32)
    want = Model(path, device="cpu").run(x)["probabilities"]
    got = hand.run(None, {"x": gpu_peers.standardize(chain, x)})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)

    peers = gpu_peers.compare(path, "cpu", (8,), quick=True, log=lambda text: None)
    assert peers["same_network"] and peers["max_abs_diff"] <= 1e-6
    assert [(r["batch"], r["path"]) for r in peers["rows"]] == [(8, "session"), (8, "iobinding")]
    assert all(r["exported"] > 0 and r["hand_built"] > 0 for r in peers["rows"])
    assert ("torch" in peers["rows"][1]) == (importlib.util.find_spec("torch") is not None)
    lines = gpu_peers.markdown(peers, "cpu")
    assert "| batch | path | TF32 | exported | hand-built | exported / hand-built |" in lines[5]
    ratio = peers["rows"][0]["exported"] / peers["rows"][0]["hand_built"]
    assert lines[7].startswith("| 8 | session |  | ") and f"| {ratio:.2f} |" in lines[7]


def test_strict_refusal_names_the_string_nodes_of_a_tabular_model(fake, tmp_path):
    """A tabular model's LabelEncoder nodes (categories are strings) have no CUDA kernel: a
    strict session is refused and the message says which nodes, for which columns."""
    from tabular_tables import cars_spec, write_cars

    write_cars(tmp_path / "cars.csv")
    (tmp_path / "cars.yaml").write_text(cars_spec(epochs=1))
    path = tmp_path / "cars.onnx"
    nnspec.export(nnspec.compile(nnspec.load_spec(tmp_path / "cars.yaml")).network, path)
    fake.no_kernel = True
    with pytest.raises(DeviceError) as e:
        Model(path, device="cuda", strict=True)
    msg = str(e.value)
    assert "for want of a CUDA kernel: the string inputs and ai.onnx.ml LabelEncoder nodes" in msg
    assert "the categorical column(s) cylinders, origin, which look categories up on the CPU" in msg
    assert Model(path, device="cuda").device == "cuda"  # without strict: those nodes on the CPU
