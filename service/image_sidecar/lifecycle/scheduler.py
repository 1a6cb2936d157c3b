"""Drives the cleanup on IMAGE_CLEANUP_CRON, the scrub on IMAGE_SCRUB_CRON and the audit on
IMAGE_AUDIT_CRON inside the event loop.

A `schedule.Scheduler` ticks once a minute, on the minute; the cron expression (evaluated by
cronsim, always in UTC whatever the process's time zone) decides whether that minute fires.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import schedule
import structlog
from aiohttp import web

from image_sidecar.appkeys import (
    blob_store_key,
    config_key,
    db_pool_key,
    image_processor_key,
    metrics_key,
)
from image_sidecar.batch import progress_in_log
from image_sidecar.lifecycle.audit import run_audit
from image_sidecar.lifecycle.cleanup import run_cleanup
from image_sidecar.lifecycle.cron import CronSchedule
from image_sidecar.lifecycle.scrub import run_scrub
from image_sidecar.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

# run_pending() is cheap; one check a second keeps a minute-granular schedule punctual.
_TICK_SECONDS = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class CronScheduler:
    """Fires `job` in every minute the cron expression matches, never two at once (a slow run
    is not stacked). `clock` is injectable so tests can say what time it is."""

    def __init__(
        self,
        cron: CronSchedule,
        job: Callable[[], Awaitable[object]],
        *,
        name: str = "cleanup",
        clock: Callable[[], datetime] = utc_now,
        tick_seconds: float = _TICK_SECONDS,
    ) -> None:
        self.cron = cron
        self.name = name
        self._job = job
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._scheduler = schedule.Scheduler()
        self.tick_job = self._scheduler.every().minute.at(":00").do(self.on_minute)
        self._running: asyncio.Task[object] | None = None
        self.fired = 0

    def on_minute(self) -> asyncio.Task[object] | None:
        """The once-a-minute tick: start the job when this UTC minute matches; the run started."""
        if not self.cron.matches(self._clock()):
            return None
        if self._running is not None and not self._running.done():
            log.warning("job_still_running", job=self.name, action="skipping this tick")
            return None
        self.fired += 1
        self._running = asyncio.ensure_future(self._job())
        return self._running

    def next_fire(self) -> datetime:
        return self.cron.next_after(self._clock())

    async def run(self) -> None:
        try:
            while True:
                self._scheduler.run_pending()
                await asyncio.sleep(self._tick_seconds)
        finally:
            if self._running is not None:
                await cancel_and_wait(self._running)


async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[config_key].retention

    async def cleanup() -> object:
        report = await run_cleanup(
            app[db_pool_key], app[blob_store_key], settings, on_batch=progress_in_log("cleanup")
        )
        app[metrics_key].cleanup_finished(report)
        return report

    async def scrub() -> object:
        report = await run_scrub(
            app[db_pool_key],
            app[blob_store_key],
            app[image_processor_key],
            max_bytes_per_second=settings.scrub_max_bytes_per_second,
            cycle_days=settings.scrub_cycle_days,
            on_progress=progress_in_log("scrub"),
        )
        app[metrics_key].scrub_finished(report)
        return report

    async def audit() -> object:
        report = await run_audit(
            app[db_pool_key],
            app[blob_store_key],
            grace_seconds=settings.orphan_grace_seconds,
            files_per_second=settings.audit_files_per_second,
            on_progress=progress_in_log("audit"),
        )
        app[metrics_key].audit_finished(report.outcome, report.orphans_found)
        return report

    jobs = []
    if settings.cleanup_enabled:
        jobs.append(CronScheduler(settings.cleanup_cron, cleanup, name="cleanup"))
    if settings.scrub_cron is not None:
        jobs.append(CronScheduler(settings.scrub_cron, scrub, name="scrub"))
    if settings.audit_cron is not None:
        jobs.append(CronScheduler(settings.audit_cron, audit, name="audit"))
    for job in jobs:
        log.info(
            f"{job.name}_scheduled",
            cron=job.cron.expression,
            next_run_utc=job.next_fire().isoformat(),
        )
    tasks = [asyncio.create_task(job.run(), name=f"{job.name}-scheduler") for job in jobs]
    yield
    for task in tasks:
        await cancel_and_wait(task)
