"""A sidecar's processes by role, read from /proc: the supervisor, its workers, each worker's
forkserver and picture processes, the resource trackers. Their resident memory (what a pod's
memory limit has to hold, before and after game nights) and their CPU (where an upload's goes)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import process_cpu_seconds, tree

ROLES = ("supervisor", "worker", "picture process", "forkserver", "resource tracker")


@dataclass(frozen=True)
class RoleMemory:
    processes: int
    rss_mb: float  # all of them, shared pages counted in each
    largest_mb: float


def _read(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, command line, RSS in bytes); None for a process gone meanwhile."""
    proc = Path(f"/proc/{pid}")
    try:
        ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        rss_kb = next(
            int(line.split()[1])
            for line in (proc / "status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return None
    return ppid, command, rss_kb * 1024


def _role(pid: int, root: int, table: dict[int, tuple[int, str, int]]) -> str:
    ppid, command, _ = table[pid]
    if "multiprocessing.forkserver" in command:
        parent_command = table.get(ppid, (0, "", 0))[1]
        return "picture process" if "multiprocessing.forkserver" in parent_command else "forkserver"
    if "multiprocessing.resource_tracker" in command:
        return "resource tracker"
    if pid == root:
        workers = [p for p, (pp, c, _) in table.items() if pp == root and c == command]
        return "supervisor" if workers else "worker"
    return "worker"


def _processes(root: int) -> dict[int, tuple[int, str, int]]:
    return {pid: read for pid in tree(root) if (read := _read(pid)) is not None}


def by_role(root: int) -> dict[str, RoleMemory]:
    """The RSS of `root` (a sidecar's `serve`) and every process under it, by role."""
    table = _processes(root)
    sizes: dict[str, list[int]] = defaultdict(list)
    for pid in table:
        sizes[_role(pid, root, table)].append(table[pid][2])
    return {
        role: RoleMemory(len(sizes[role]), sum(sizes[role]) / 2**20, max(sizes[role]) / 2**20)
        for role in ROLES
        if sizes[role]
    }


def total_mb(memory: dict[str, RoleMemory]) -> float:
    return sum(role.rss_mb for role in memory.values())


def cpu_seconds_by_role(root: int) -> dict[str, float]:
    """The CPU seconds used so far by `root` and every process under it, by role."""
    table = _processes(root)
    seconds: dict[str, float] = defaultdict(float)
    for pid in table:
        seconds[_role(pid, root, table)] += process_cpu_seconds(pid)
    return dict(seconds)
