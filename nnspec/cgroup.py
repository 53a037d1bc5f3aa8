"""The memory limit of this process's cgroup (a container's or a systemd slice's).

A container sees the host's memory in /proc/meminfo, so an estimate or an allocation check
from that alone lets the kernel's OOM killer end a run that was told it fits. Read by the
spec's memory estimate (``spec/memory.py``) and by the checks on untrusted inputs
(``untrusted.memory_limit``); no nnspec imports, so both can use it.
"""

from __future__ import annotations

from pathlib import Path

# cgroup v1 writes "no limit" as the largest page-aligned int64 (or near it); anything above
# this many bytes is no limit.
_NO_LIMIT = 2**60


def cgroup_memory_limit(
    proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup"
) -> int | None:
    """The memory limit in bytes of this process's cgroup (a container's or a systemd
    slice's), v2 (``memory.max``) or v1 (``memory.limit_in_bytes``); None when there is none.

    The limit of the process's own cgroup and of each cgroup above it counts (the smallest
    wins), as the kernel enforces them all.
    """
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # v2: "0::/path"
            base, name = Path(root), "memory.max"
        elif "memory" in controllers.split(","):  # v1: "4:memory:/path"
            base, name = Path(root) / "memory", "memory.limit_in_bytes"
        else:
            continue
        parts = [p for p in path.strip().split("/") if p]
        # Inside a container the cgroup's path is often not mounted under its own name (the
        # container sees its cgroup as the root): the root's file then holds its limit.
        for depth in range(len(parts), -1, -1):
            limit = _read_limit(base.joinpath(*parts[:depth], name))
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, ValueError):
        return None
    if text == "max" or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value < _NO_LIMIT else None
