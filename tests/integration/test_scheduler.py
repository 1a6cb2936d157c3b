"""The scheduler: `schedule` ticks every minute, the cron expression decides in UTC."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from image_sidecar.config import RetentionSettings
from image_sidecar.lifecycle.cleanup import run_cleanup
from image_sidecar.lifecycle.cron import CronSchedule
from image_sidecar.lifecycle.scheduler import CronScheduler
from testkit.helpers import run_sidecar, storage_files
from testkit.seeding import seed_images


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def kolkata_time_zone(monkeypatch):
    """The process runs in UTC+05:30, so local and UTC minutes and hours differ."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_daily_cron_fires_at_two_utc_whatever_the_process_time_zone(kolkata_time_zone):
    clock = Clock(datetime(2026, 11, 25, 1, 55, tzinfo=UTC))
    fired_at = []

    async def job():
        fired_at.append(clock.now)

    driver = CronScheduler(CronSchedule("0 2 * * *"), job, clock=clock)
    for _ in range(24 * 60):  # one whole day, minute by minute
        if task := driver.on_minute():
            await task
        clock.now += timedelta(minutes=1)
    assert fired_at == [datetime(2026, 11, 25, 2, 0, tzinfo=UTC)]
    assert driver.next_fire() == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def test_schedule_ticks_once_a_minute_on_the_minute():
    async def job():
        pass

    tick = CronScheduler(CronSchedule("0 2 * * *"), job).tick_job
    assert (tick.unit, tick.interval) == ("minutes", 1)
    assert tick.at_time is not None
    assert tick.at_time.second == 0


async def test_a_matching_minute_runs_a_real_cleanup(database, storage_dir, pool, store):
    seed_images(database.url, storage_dir, 20)
    reports = []

    async def job():
        reports.append(await run_cleanup(pool, store, RetentionSettings()))

    clock = Clock(datetime(2026, 11, 25, 3, 15, 30, tzinfo=UTC))
    driver = CronScheduler(CronSchedule("*/15 * * * *"), job, clock=clock)
    task = driver.on_minute()
    assert task is not None
    await task
    assert reports[0].images_deleted == 20
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


async def test_a_slow_run_is_not_stacked():
    started = []
    release = asyncio.Event()

    async def slow_job():
        started.append(1)
        await release.wait()

    clock = Clock(datetime(2026, 11, 25, 0, 0, tzinfo=UTC))
    driver = CronScheduler(CronSchedule("* * * * *"), slow_job, clock=clock)
    first = driver.on_minute()
    await asyncio.sleep(0)
    clock.now += timedelta(minutes=1)
    assert driver.on_minute() is None  # the first run is still going
    release.set()
    await first
    clock.now += timedelta(minutes=1)
    assert driver.on_minute() is not None
    assert driver.fired == 2


def test_service_refuses_to_start_with_an_invalid_cron(tmp_path):
    result = run_sidecar(
        "serve", cwd=tmp_path, environ={**os.environ, "IMAGE_CLEANUP_CRON": "0 2 31 2 *"}
    )
    assert result.returncode != 0
    assert "IMAGE_CLEANUP_CRON" in result.stderr
    assert "day-of-month" in result.stderr
