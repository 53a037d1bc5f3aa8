"""Specs written to hurt: bombs, depth, size, bytes. Each is a quick, located exit-2 error."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from nnspec.cli.commands import main

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
    for i in range(8)
)  # 10^9 leaves once expanded


def _write(tmp_path, content) -> str:
    path = tmp_path / "spec.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("billion_laughs", LAUGHS, ":1:35: e[7][8][8][8][9]: the document expands to more than"),
        (
            "deep_flow_lists",
            "spec_version: 1\nname: " + "[" * 20000 + "]" * 20000 + "\n",
            ":2:70: the document nests more than 64 levels deep",
        ),
        (
            "deep_flow_maps",
            "name: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
            ":1:256: the document nests more than 64 levels deep",
        ),
        (
            "deep_block_maps",
            "name:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)) + "  " * 200 + "v\n",
            ":64:127: the document nests more than 64 levels deep",
        ),
        (
            "several_megabytes",
            "spec_version: 1\ndescription: " + "x" * 3_000_000 + "\n",
            ": the file is 3.0 MB; a spec is expected to be a few KB (at most 1 MB)",
        ),
        ("binary", bytes(range(256)) * 64, ":2:118: not UTF-8 text (byte 0x80)"),
        ("nul_bytes", b"name: a\x00b\n", ":1:8: invalid YAML: unacceptable character #x0000"),
        ("python_tag", "name: !!python/object/apply:os.system [touch pwned]\n", "unsupported"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 and "\n" not in v else "",
)
def test_hostile_spec_is_a_quick_located_error(tmp_path, capsys, name, content, message):
    path = _write(tmp_path, content)
    start = time.perf_counter()
    code = main(["validate", path])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(path) and message in err, err
    assert "Traceback" not in err
    assert elapsed < 10, f"{name} took {elapsed:.1f} s"
    assert not (tmp_path / "pwned").exists()


def test_bomb_in_a_fresh_process_has_bounded_memory(tmp_path):
    """Run as users do: the alias bomb stops before it expands (peak RSS well under 1 GB)."""
    path = _write(tmp_path, LAUGHS)
    code = (
        "import sys\n"
        "from nnspec.cli.commands import main\n"
        f"rc = main(['validate', {path!r}])\n"
        # VmHWM, the peak of this process's own memory: ru_maxrss keeps the forking parent's
        # peak across exec on Linux, which after AlexNet's tests is several GB.
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(peak.split()[1])\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert int(proc.stdout.strip()) < 500_000  # KB
    assert "expands to more than 100000 nodes" in proc.stderr
