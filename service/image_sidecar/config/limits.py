"""What this process may use: the CPUs and memory its container grants, not the node's.

`IMAGE_SIDECAR_WORKERS=auto` counts workers from these: the cgroup's CPU quota (v2 `cpu.max`, v1
`cpu.cfs_quota_us` over `cpu.cfs_period_us`) rounded up, else the CPUs the process may run on;
and no more than the memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`) holds at the
measured footprint of a replica and of each worker (docs/operations.md). The cgroup of the
process is found through `/proc/self/cgroup`; every level up to the root counts (a pod's limit
may sit above the container's cgroup). `root` lets the tests point at fake files.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

# Measured RSS (docs/operations.md: 2 workers 340 MB, 4 workers 513 MB after a few uploads): a
# replica's supervisor and shared parts, and each worker with its share of the picture
# processes; a worker count keeps a quarter of the limit as headroom for picture bursts.
REPLICA_BASE_BYTES = 170 * 2**20
PER_WORKER_BYTES = 90 * 2**20
MEMORY_HEADROOM = 0.75


@dataclass(frozen=True)
class Limits:
    cpus: int  # whole CPUs: the quota rounded up, at most the affinity count
    memory_bytes: int | None  # None: no limit

    def workers(self) -> int:
        """Workers for `auto`: one per CPU, as many as the memory limit holds, at least one."""
        if self.memory_bytes is None:
            return self.cpus
        room = self.memory_bytes * MEMORY_HEADROOM - REPLICA_BASE_BYTES
        return max(1, min(self.cpus, int(room // PER_WORKER_BYTES)))


def limits(root: Path = Path("/")) -> Limits:
    affinity = len(os.sched_getaffinity(0))
    cgroups = _cgroups(root)
    cpus = _cpu_quota(root, cgroups)
    return Limits(
        cpus=max(1, min(affinity, math.ceil(cpus))) if cpus is not None else max(1, affinity),
        memory_bytes=_memory_limit(root, cgroups),
    )


def _cgroups(root: Path) -> dict[str, str]:
    """controller -> the process's cgroup path ("" for cgroup v2's unified hierarchy)."""
    found: dict[str, str] = {}
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            found[controller] = path
    return found


def _levels(mount: Path, path: str) -> list[Path]:
    """The cgroup's directory and each one above it up to the mount, that exists (inside a
    container the process's path may not exist under its own mount: the mount is its cgroup)."""
    directory = mount / path.lstrip("/")
    levels = []
    while True:
        if directory.is_dir():
            levels.append(directory)
        if directory == mount:
            return levels or [mount]
        directory = directory.parent


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


# Where each hierarchy is mounted: v2's unified one, and v1's controllers (either name).
_V2 = ("sys/fs/cgroup",)
_V1_CPU = ("sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpu")
_V1_MEMORY = ("sys/fs/cgroup/memory",)


def _directories(
    root: Path, cgroups: dict[str, str], controller: str, mounts: tuple[str, ...]
) -> list[Path]:
    """Every level of the process's cgroup of `controller` ("" for v2), under the first of
    `mounts` that exists."""
    if controller not in cgroups:
        return []
    for mount in mounts:
        if (root / mount).is_dir():
            return _levels(root / mount, cgroups[controller])
    return []


def _cpu_quota(root: Path, cgroups: dict[str, str]) -> float | None:
    quotas: list[float] = []
    for level in _directories(root, cgroups, "", _V2):
        value = _read(level / "cpu.max")
        if value and not value.startswith("max"):
            quota, period = value.split()
            quotas.append(int(quota) / int(period))
    for level in _directories(root, cgroups, "cpu", _V1_CPU):
        cfs_quota = _read(level / "cpu.cfs_quota_us")
        cfs_period = _read(level / "cpu.cfs_period_us")
        if cfs_quota and cfs_period and int(cfs_quota) > 0:
            quotas.append(int(cfs_quota) / int(cfs_period))
    return min(quotas) if quotas else None


def _memory_limit(root: Path, cgroups: dict[str, str]) -> int | None:
    found: list[int] = []
    for level in _directories(root, cgroups, "", _V2):
        value = _read(level / "memory.max")
        if value and value.isdigit():
            found.append(int(value))
    for level in _directories(root, cgroups, "memory", _V1_MEMORY):
        value = _read(level / "memory.limit_in_bytes")
        # v1 says "no limit" with a number near 2**63, rounded down to the page size.
        if value and value.isdigit() and int(value) < 2**60:
            found.append(int(value))
    return min(found) if found else None
