"""CPU time of process trees, read from /proc: what a sidecar (its supervisor, workers and
picture processes), nginx or PostgreSQL used during a run, whatever process did the work."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / _TICKS


def tree(root: int) -> list[int]:
    """`root` and every process under it (the forkserver's picture processes included: they
    descend from the worker that started the forkserver), as they are now."""
    parents = {
        int(entry.name): stat[0]
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None
    }
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in parents:
            found.append(pid)
            stack.extend(children.get(pid, ()))
    return found


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by one process (and its reaped children); 0 for one gone."""
    stat = _stat(pid)
    return 0.0 if stat is None else stat[1]


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by `root` and every process under it."""
    return sum(process_cpu_seconds(pid) for pid in tree(root))


def own_cpu_seconds() -> float:
    """This process's CPU seconds (the load generator)."""
    times = os.times()
    return times.user + times.system
