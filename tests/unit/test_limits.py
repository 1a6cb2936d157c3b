"""`IMAGE_SIDECAR_WORKERS=auto` counts what the container grants (cgroup v1 and v2 files laid out
as a container sees them), not the node's cores."""

from __future__ import annotations

import os
from pathlib import Path

from image_sidecar.config.limits import PER_WORKER_BYTES, Limits, limits

AFFINITY = len(os.sched_getaffinity(0))


def _files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_v2_quota_of_one_and_a_half_cpus_is_two_workers_at_most(tmp_path):
    root = _files(
        tmp_path,
        {
            "proc/self/cgroup": "0::/kubepods/pod1/sidecar\n",
            "sys/fs/cgroup/kubepods/pod1/sidecar/cpu.max": "150000 100000\n",
            "sys/fs/cgroup/kubepods/pod1/sidecar/memory.max": "max\n",
        },
    )
    found = limits(root)
    assert found.cpus == min(2, AFFINITY)
    assert found.memory_bytes is None
    assert found.workers() == min(2, AFFINITY)


def test_a_limit_above_the_containers_cgroup_counts_too(tmp_path):
    root = _files(
        tmp_path,
        {
            "proc/self/cgroup": "0::/kubepods/pod1/sidecar\n",
            "sys/fs/cgroup/kubepods/pod1/sidecar/cpu.max": "max 100000\n",
            "sys/fs/cgroup/kubepods/pod1/cpu.max": "50000 100000\n",
            "sys/fs/cgroup/kubepods/pod1/memory.max": str(512 * 2**20),
        },
    )
    found = limits(root)
    assert (found.cpus, found.memory_bytes) == (1, 512 * 2**20)


def test_v1_quota_and_memory_as_a_container_sees_them(tmp_path):
    root = _files(
        tmp_path,
        {
            # Inside a container its own cgroup is the mount's root.
            "proc/self/cgroup": "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "100000\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": str(2**30),
        },
    )
    found = limits(root)
    assert (found.cpus, found.memory_bytes) == (1, 2**30)


def test_no_quota_and_no_limit_is_the_cpus_the_process_may_run_on(tmp_path):
    root = _files(
        tmp_path,
        {
            "proc/self/cgroup": "2:cpu,cpuacct:/\n1:memory:/\n0::/\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        },
    )
    assert limits(root) == Limits(cpus=AFFINITY, memory_bytes=None)
    assert limits(tmp_path / "nothing-there") == Limits(cpus=AFFINITY, memory_bytes=None)


def test_the_memory_limit_bounds_the_workers():
    holds_two = int((170 * 2**20 + 2 * PER_WORKER_BYTES) / 0.75) + 1
    assert Limits(cpus=8, memory_bytes=holds_two).workers() == 2
    assert Limits(cpus=8, memory_bytes=512 * 2**20).workers() == 2
    assert Limits(cpus=8, memory_bytes=64 * 2**20).workers() == 1  # at least one
    assert Limits(cpus=8, memory_bytes=None).workers() == 8
