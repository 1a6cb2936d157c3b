"""Cleanup at larger backlogs: everything goes, and memory does not grow with the backlog."""

from __future__ import annotations

import tracemalloc

import pytest

from image_sidecar.config import RetentionSettings
from image_sidecar.lifecycle.cleanup import run_cleanup
from testkit.helpers import storage_files
from testkit.seeding import seed_images


async def _clean(pool, store):
    return await run_cleanup(pool, store, RetentionSettings(batch_size=500))


async def test_a_thousand_expired_images_are_all_cleaned(database, storage_dir, pool, store):
    freed = seed_images(database.url, storage_dir, 1_000)
    report = await _clean(pool, store)
    assert report.outcome == "success"
    assert (report.images_deleted, report.files_deleted, report.bytes_freed) == (
        1_000,
        1_000,
        freed,
    )
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


async def _peak_memory_of_cleanup(database, storage_dir, pool, store, backlog):
    seed_images(database.url, storage_dir, backlog)
    tracemalloc.start()
    try:
        report = await _clean(pool, store)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.images_deleted == backlog
    return peak


@pytest.mark.perf
async def test_memory_stays_flat_as_the_backlog_grows_tenfold(database, storage_dir, pool, store):
    small = await _peak_memory_of_cleanup(database, storage_dir, pool, store, 2_000)
    large = await _peak_memory_of_cleanup(database, storage_dir, pool, store, 20_000)
    # Batches bound the rows held at once; a tenfold backlog may not cost tenfold memory.
    assert large < small * 2, (small, large)
