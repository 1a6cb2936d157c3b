"""What the batch commands report (cleanup and purges, the renditions backfill, the store
migration): their own counts, the keys that failed, a JSON summary and a progress line.

One bad item never stops a batch: it is counted, its key named (the first FAILED_KEYS_SHOWN;
the count covers them all), and the next run retries it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import structlog

log = structlog.get_logger(__name__)

# Failed keys named in a summary; the count covers them all.
FAILED_KEYS_SHOWN = 20


@dataclass
class BatchReport:
    failed_keys: list[str] = field(default_factory=list)
    # The name of the report's failure count: what failed is files for deletions, images or
    # files for the others.
    FAILURES: ClassVar[str] = "failed"

    def count_failure(self, key: str) -> None:
        setattr(self, self.FAILURES, getattr(self, self.FAILURES) + 1)
        if len(self.failed_keys) < FAILED_KEYS_SHOWN:
            self.failed_keys.append(key)

    def as_dict(self) -> dict[str, Any]:
        """The JSON summary: every count, leaving out what does not apply (None)."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    def progress_line(self, elapsed_seconds: float) -> str:
        """One line for a terminal while the batch goes on."""
        raise NotImplementedError


Progress = Callable[[BatchReport], None]
"""Called after each batch with the report so far (the commands print a progress line)."""


def progress_in_log(job: str, every_seconds: float = 60.0) -> Progress:
    """A scheduled run's progress line in the log, at most once every `every_seconds`: the runs
    a replica starts by itself have no terminal, and an operator watching a long one (a scrub
    slice, an audit's walk, a large expiry) wants to know how far it has come."""
    started = last = time.monotonic()

    def show(report: BatchReport) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every_seconds:
            last = now
            log.info("job_progress", job=job, progress=report.progress_line(now - started))

    return show


def time_left(done_share: float, elapsed_seconds: float) -> str:
    """`, ~N s left` (or min) at the pace so far, for a progress line; nothing until there is a
    pace, or once the work is done."""
    if not 0 < done_share < 1:
        return ""
    seconds = elapsed_seconds * (1 - done_share) / done_share
    return f", ~{seconds / 60:.0f} min left" if seconds >= 120 else f", ~{seconds:.0f} s left"


def key_share(position: object) -> float:
    """How far a walk in key order has come, for keys spread evenly over their space (random
    UUIDs, SHA-256 digests): its position's leading hex digits as a share of that space. Known
    at once, where counting what is left would read it all."""
    if not position:  # not begun (None, or the empty key before every digest)
        return 0.0
    digits = str(position).replace("-", "")[:12]
    return int(digits, 16) / 16 ** len(digits)


class Pace:
    """Keeps a batch job under `per_second` units (bytes read, files walked; 0: no limit) by
    sleeping as far as it is ahead, so that it never starves serving."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._started = time.monotonic()
        self._done = 0

    async def advance(self, units: int) -> None:
        self._done += units
        if self.per_second:
            ahead = self._done / self.per_second - (time.monotonic() - self._started)
            if ahead > 0:
                await asyncio.sleep(ahead)
