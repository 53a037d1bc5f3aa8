"""Atomic writes without os.fchmod (Windows before Python 3.13) and under read-only umasks;
the memory estimate's limit from cgroup v1 and v2 files."""

from __future__ import annotations

import os
import stat

import pytest

from nnspec import atomic
from nnspec.spec import memory


@pytest.fixture
def umask():
    """Set a umask for one test and restore the old one."""
    old = os.umask(0o022)
    os.umask(old)

    def set_to(value: int) -> None:
        os.umask(value)

    yield set_to
    os.umask(old)


def test_atomic_write_without_fchmod(tmp_path, monkeypatch, umask):
    umask(0o027)
    monkeypatch.delattr(os, "fchmod", raising=False)  # as on Windows before Python 3.13
    assert not hasattr(os, "fchmod")
    out = tmp_path / "m.onnx"
    atomic.write_bytes(out, b"first")
    assert out.read_bytes() == b"first"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0o600
    out.chmod(0o604)
    atomic.write_text(out, "second")  # an existing file keeps its permissions
    assert out.read_text() == "second" and stat.S_IMODE(out.stat().st_mode) == 0o604
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left


@pytest.mark.parametrize("mask, mode", [(0o222, 0o444), (0o277, 0o400)])
def test_atomic_write_under_a_read_only_umask(tmp_path, umask, mask, mode):
    umask(mask)
    out = tmp_path / "p.csv"
    atomic.write_text(out, "a\n")
    assert stat.S_IMODE(out.stat().st_mode) == mode
    atomic.write_text(out, "b\n")  # replacing a read-only file of one's own works too
    assert out.read_text() == "b\n" and stat.S_IMODE(out.stat().st_mode) == mode


def test_an_exported_model_is_written_without_fchmod(tmp_path, monkeypatch):
    from helpers import mlp_spec

    import nnspec

    monkeypatch.delattr(os, "fchmod", raising=False)
    nnspec.compile(mlp_spec(dtype="float32"), tmp_path / "t.onnx")
    from nnspec_runtime import Model

    assert Model(tmp_path / "t.onnx", device="cpu").predict([[0.0, 1.0, 2.0, 3.0]]).labels.shape


def _cgroup(tmp_path, lines: str, files: dict[str, str]):
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "cgroup"
    proc.write_text(lines)
    root = tmp_path / "fs"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return str(proc), str(root)


def test_cgroup_v2_limit(tmp_path):
    proc, root = _cgroup(
        tmp_path, "0::/user.slice/job\n", {"user.slice/job/memory.max": "2147483648\n"}
    )
    assert memory.cgroup_memory_limit(proc, root) == 2**31


def test_cgroup_v2_limit_of_a_parent_counts_and_max_is_none(tmp_path):
    files = {"a/memory.max": "1073741824\n", "a/b/memory.max": "max\n"}
    proc, root = _cgroup(tmp_path, "0::/a/b\n", files)
    assert memory.cgroup_memory_limit(proc, root) == 2**30
    proc, root = _cgroup(tmp_path / "x", "0::/\n", {"memory.max": "max\n"})
    assert memory.cgroup_memory_limit(proc, root) is None


def test_cgroup_v2_inside_a_container_reads_the_root(tmp_path):
    # The container sees its own cgroup as the root: /proc says /docker/abc, which is not
    # mounted under that name.
    proc, root = _cgroup(tmp_path, "0::/docker/abc\n", {"memory.max": "536870912\n"})
    assert memory.cgroup_memory_limit(proc, root) == 2**29


def test_cgroup_v1_limit_and_its_no_limit_value(tmp_path):
    lines = "4:memory:/job\n3:cpuset:/\n"
    proc, root = _cgroup(tmp_path, lines, {"memory/job/memory.limit_in_bytes": "3221225472\n"})
    assert memory.cgroup_memory_limit(proc, root) == 3 * 2**30
    unlimited = {"memory/memory.limit_in_bytes": "9223372036854771712\n"}
    proc, root = _cgroup(tmp_path / "u", "4:memory:/\n", unlimited)
    assert memory.cgroup_memory_limit(proc, root) is None


def test_no_cgroup_file_is_no_limit(tmp_path):
    assert memory.cgroup_memory_limit(str(tmp_path / "missing"), str(tmp_path)) is None


def test_machine_memory_is_the_lower_of_physical_and_cgroup(monkeypatch):
    monkeypatch.setattr(memory, "_physical_memory", lambda: 24 * 2**30)
    monkeypatch.setattr(memory, "cgroup_memory_limit", lambda: 2 * 2**30)
    assert memory.machine_memory() == 2 * 2**30
    monkeypatch.setattr(memory, "cgroup_memory_limit", lambda: None)
    assert memory.machine_memory() == 24 * 2**30


def test_a_cgroup_limit_refuses_a_spec_that_fits_the_host(monkeypatch):
    import nnspec
    from nnspec import pipeline

    monkeypatch.setattr(memory, "cgroup_memory_limit", lambda: 10 * 2**20)  # 10 MiB
    spec = nnspec.load_spec(
        "spec_version: 1\nname: big\ntask: classification\ninput: {features: 784}\n"
        "classes: [a, b]\nlayers:\n  - {kind: dense, units: 4000}\n"
        "  - {kind: dense, units: 2, activation: softmax}\nloss: cross_entropy\n"
    )
    with pytest.raises(nnspec.SpecError, match=r"needs about .* of memory .* more than this"):
        pipeline.resolve(spec)


def test_the_untrusted_input_bound_honours_the_cgroup_limit(monkeypatch):
    from nnspec import cgroup, untrusted

    host = untrusted.memory_limit()
    monkeypatch.setattr(cgroup, "cgroup_memory_limit", lambda: 64 * 2**20)
    assert untrusted.memory_limit() == min(host, 64 * 2**20)
    with pytest.raises(untrusted.DataError, match="memory"):
        untrusted.check_allocation(128 * 2**20, "x.npy: its array", untrusted.DataError)


def test_reading_and_streaming_without_o_nonblock(tmp_path, monkeypatch):
    # Windows has no os.O_NONBLOCK (nor O_NOCTTY): files are opened without them.
    from helpers import mlp_spec

    import nnspec
    from nnspec_runtime import Model

    nnspec.compile(mlp_spec(dtype="float32"), tmp_path / "t.onnx")
    monkeypatch.delattr(os, "O_NONBLOCK")
    monkeypatch.delattr(os, "O_NOCTTY")
    assert Model(tmp_path / "t.onnx", device="cpu").predict([[0.0, 1.0, 2.0, 3.0]]).labels.shape
    atomic.write_bytes("/dev/null", b"streamed")  # a device: written through


# Windows in a subprocess: no fcntl, and an msvcrt whose byte locks are POSIX record locks
# (conflicting between processes, as msvcrt's do), so that nnspec's own code path runs.
_AS_WINDOWS = """
import fcntl as _real, sys, types
sys.modules["fcntl"] = None
msvcrt = types.ModuleType("msvcrt")
msvcrt.LK_NBLCK = 2
def locking(fd, mode, n):
    _real.lockf(fd, _real.LOCK_EX | _real.LOCK_NB, n)
msvcrt.locking = locking
sys.modules["msvcrt"] = msvcrt
from nnspec import atomic, file_lock
from nnspec.training.checkpoint import CheckpointError, DirectoryOwner
assert file_lock.fcntl is None
"""


def test_locks_without_fcntl(tmp_path):
    import subprocess
    import sys
    import textwrap

    holder = _AS_WINDOWS + textwrap.dedent(
        f"""
        owner = DirectoryOwner(__import__("pathlib").Path({str(tmp_path)!r}))
        with atomic.export_lock({str(tmp_path / "m.onnx")!r}):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    waiter = _AS_WINDOWS + textwrap.dedent(
        f"""
        import time
        try:
            DirectoryOwner(__import__("pathlib").Path({str(tmp_path)!r}))
        except CheckpointError as e:
            print("refused:", e, flush=True)
        start = time.monotonic()
        with atomic.export_lock({str(tmp_path / "m.onnx")!r}):
            print(f"locked after {{time.monotonic() - start:.2f}}s", flush=True)
        """
    )
    first = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout.readline().strip() == "held"
        second = subprocess.Popen([sys.executable, "-c", waiter], stdout=subprocess.PIPE, text=True)
        assert "in use by another training run" in second.stdout.readline()
        import time

        time.sleep(0.5)  # the second waits on the export lock meanwhile
        first.stdin.write("\n")
        first.stdin.flush()
        out, _ = second.communicate(timeout=30)
        waited = float(out.split("after ")[1].rstrip("s\n"))
        assert waited >= 0.4, out  # it waited for the first to let go
    finally:
        first.kill()
        first.wait()
