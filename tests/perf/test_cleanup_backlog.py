"""Cleanup at larger backlogs: everything goes, and memory does not grow with the backlog."""

from __future__ import annotations

import tracemalloc

import pytest

from image_sidecar import db
from image_sidecar.config import CleanupSettings
from image_sidecar.retention import run_cleanup
from image_sidecar.storage.filesystem import FilesystemBlobStore
from tests.conftest import storage_files
from tests.seeding import seed_images


async def _clean(database, storage_dir):
    pool = await db.create_pool(database.url, size=2)
    try:
        return await run_cleanup(
            pool, FilesystemBlobStore(storage_dir), CleanupSettings(batch_size=500)
        )
    finally:
        await db.close_pool(pool)


async def test_a_thousand_expired_images_are_all_cleaned(database, storage_dir):
    freed = seed_images(database.url, storage_dir, 1_000)
    report = await _clean(database, storage_dir)
    assert report.outcome == "success"
    assert (report.images_deleted, report.files_deleted, report.bytes_freed) == (
        1_000,
        1_000,
        freed,
    )
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


async def _peak_memory_of_cleanup(database, storage_dir, backlog):
    seed_images(database.url, storage_dir, backlog)
    tracemalloc.start()
    try:
        report = await _clean(database, storage_dir)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.images_deleted == backlog
    return peak


@pytest.mark.perf
async def test_memory_stays_flat_as_the_backlog_grows_tenfold(database, storage_dir):
    small = await _peak_memory_of_cleanup(database, storage_dir, 2_000)
    large = await _peak_memory_of_cleanup(database, storage_dir, 20_000)
    # Batches bound the rows held at once; a tenfold backlog may not cost tenfold memory.
    assert large < small * 2, (small, large)
