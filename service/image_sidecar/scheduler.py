"""Drives the cleanup on IMAGE_CLEANUP_CRON with a `schedule.Scheduler` inside the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import schedule
import structlog
from aiohttp import web

from image_sidecar.cron import schedule_job
from image_sidecar.retention import CleanupReport, run_cleanup
from image_sidecar.tasks import cancel_and_wait
from image_sidecar.typedefs import blob_store_key, config_key, db_pool_key, metrics_key

log = structlog.get_logger(__name__)

# run_pending() is cheap; one check a second keeps a minute-granular schedule punctual.
_TICK_SECONDS = 1.0


class CleanupScheduler:
    """Fires `job` whenever the schedule says so, never two at once (a slow run is not stacked)."""

    def __init__(
        self,
        plan: Callable[[schedule.Scheduler], schedule.Job],
        job: Callable[[], Awaitable[object]],
        tick_seconds: float = _TICK_SECONDS,
    ) -> None:
        self._scheduler = schedule.Scheduler()
        plan(self._scheduler).do(self._fire)
        self._job = job
        self._tick_seconds = tick_seconds
        self._running: asyncio.Task[object] | None = None
        self.fired = 0

    def _fire(self) -> None:
        if self._running is not None and not self._running.done():
            log.warning("cleanup_still_running", action="skipping this tick")
            return
        self.fired += 1
        self._running = asyncio.ensure_future(self._job())

    @property
    def next_run(self) -> object:
        return self._scheduler.next_run

    async def run(self) -> None:
        try:
            while True:
                self._scheduler.run_pending()
                await asyncio.sleep(self._tick_seconds)
        finally:
            if self._running is not None:
                await cancel_and_wait(self._running)


async def run_app_cleanup(app: web.Application) -> CleanupReport:
    """One cleanup run with the app's pool and store, recorded in its metrics."""
    report = await run_cleanup(
        app[db_pool_key], app[blob_store_key], app[config_key].cleanup_settings
    )
    app[metrics_key].cleanup_finished(report)
    return report


async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    if not config.cleanup_enabled:
        yield
        return
    driver = CleanupScheduler(
        lambda s: schedule_job(config.cleanup_cron, s), lambda: run_app_cleanup(app)
    )
    log.info(
        "cleanup_scheduled", cron=config.cleanup_cron.expression, next_run=str(driver.next_run)
    )
    task = asyncio.create_task(driver.run(), name="cleanup-scheduler")
    yield
    await cancel_and_wait(task)
