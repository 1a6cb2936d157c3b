"""The scheduler drives real cleanup runs inside the event loop."""

from __future__ import annotations

import asyncio
import os

from image_sidecar import db
from image_sidecar.config import CleanupSettings
from image_sidecar.retention import run_cleanup
from image_sidecar.scheduler import CleanupScheduler
from image_sidecar.storage.filesystem import FilesystemBlobStore
from tests.conftest import run_sidecar, storage_files
from tests.seeding import seed_images


async def test_the_schedule_fires_a_cleanup_run(database, storage_dir):
    seed_images(database.url, storage_dir, 20)
    pool = await db.create_pool(database.url, size=2)
    reports = []

    async def job():
        reports.append(await run_cleanup(pool, FilesystemBlobStore(storage_dir), CleanupSettings()))

    driver = CleanupScheduler(lambda s: s.every(1).seconds, job, tick_seconds=0.05)
    task = asyncio.create_task(driver.run())
    try:
        for _ in range(100):
            if reports:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.close_pool(pool)
    assert driver.fired >= 1
    assert reports[0].images_deleted == 20
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


async def test_a_slow_run_is_not_stacked(database):
    started = []
    release = asyncio.Event()

    async def slow_job():
        started.append(1)
        await release.wait()

    driver = CleanupScheduler(lambda s: s.every(1).seconds, slow_job, tick_seconds=0.05)
    task = asyncio.create_task(driver.run())
    await asyncio.sleep(2.3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(started) == 1


def test_service_refuses_to_start_with_a_cron_it_cannot_honour(tmp_path):
    result = run_sidecar(
        "serve", cwd=tmp_path, environ={**os.environ, "IMAGE_CLEANUP_CRON": "0 2 */2 * *"}
    )
    assert result.returncode != 0
    assert "IMAGE_CLEANUP_CRON" in result.stderr
