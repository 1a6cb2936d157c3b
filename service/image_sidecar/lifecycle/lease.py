"""The lease that lets one replica at a time run a batch job (the cleanup, the scrub).

A row in the database, not a session advisory lock, so that it works through PgBouncer: taken
for LEASE_SECONDS, renewed at a third of that while the run goes on, given back at its end. A
run whose process died blocks the next one for at most LEASE_SECONDS.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar
from uuid import UUID

import structlog

from image_sidecar import db
from image_sidecar.errors import DatabaseUnavailable
from image_sidecar.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

LEASE_SECONDS = 60.0

Take = Callable[[db.Cursor, UUID, float], Awaitable[bool]]
GiveBack = Callable[[db.Cursor, UUID], Awaitable[None]]


@asynccontextmanager
async def held_lease(
    pool: db.Pool, job: str, take: Take, give_back: GiveBack
) -> AsyncIterator[bool]:
    """Whether this run got the lease; held (renewed in the background) until the block ends."""
    holder = uuid.uuid4()
    async with db.cursor(pool) as cur:
        if not await take(cur, holder, LEASE_SECONDS):
            yield False
            return

    async def renew() -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                async with db.cursor(pool) as cur:
                    await take(cur, holder, LEASE_SECONDS)
            except DatabaseUnavailable:
                log.warning("lease_not_renewed", job=job)

    renewing = asyncio.create_task(renew(), name=f"renew-{job}-lease")
    try:
        yield True
    finally:
        await cancel_and_wait(renewing)
        async with db.cursor(pool) as cur:
            await give_back(cur, holder)


class JobReport(Protocol):
    """What a leased batch job's report carries besides its own counts."""

    outcome: Any
    reason: str | None
    seconds: float

    def as_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=JobReport)


async def run_leased(
    pool: db.Pool,
    job: str,
    lease: tuple[Take, GiveBack],
    report: R,
    work: Callable[[], Awaitable[None]],
) -> R:
    """`work` under the job's lease, its report completed: `skipped` when another replica holds
    the lease, `failed` (with the reason, and the traceback in the log) when the work raised,
    the seconds it took; one log line `{job}_run`."""
    started = time.monotonic()
    try:
        async with held_lease(pool, job, *lease) as held:
            if not held:
                report.outcome, report.reason = "skipped", f"another {job} run holds the lease"
            else:
                await work()
    except Exception as exc:
        report.outcome = "failed"
        report.reason = str(exc) or type(exc).__name__
        log.exception(f"{job}_error")
    report.seconds = round(time.monotonic() - started, 3)
    log.info(f"{job}_run", **report.as_dict())
    return report
