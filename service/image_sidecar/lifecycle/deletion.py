"""Deleting expired images in bounded batches: what the cleanup, purges and takedowns share.

Each batch locks its expired rows, deletes their files, moves or drops the cache entries that
point at the deleted ones, deletes those rows, then commits. Files go while the rows are still
locked, so a new upload to the same path waits and cannot lose its file; a crash before the
commit leaves expired rows (never listed or reused) that the next run finishes, a crash after
it leaves nothing. A file the store refuses to delete keeps its row, is reported, skipped for
the rest of the run and retried by the next one, so one bad file never stalls the cleanup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from uuid import UUID

import structlog

from image_sidecar import db
from image_sidecar.batch import BatchReport, Progress, time_left
from image_sidecar.db import retention as retention_rows
from image_sidecar.db.retention import DoomedImage
from image_sidecar.db.scrub import QUARANTINE
from image_sidecar.storage.base import BlobRef, BlobStore
from image_sidecar.tracing import span

log = structlog.get_logger(__name__)


@dataclass
class DeletionTally(BatchReport):
    images_deleted: int = 0
    files_deleted: int = 0
    bytes_freed: int = 0
    cache_entries_moved: int = 0
    cache_entries_removed: int = 0
    files_failed: int = 0
    # A cleanup's backlog as it began (an index range of the expired images): its progress line
    # says how much is left. None for purges and takedowns.
    images_expected: int | None = None
    FAILURES: ClassVar[str] = "files_failed"

    def count_failures(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.count_failure(key)

    def progress_line(self, elapsed_seconds: float) -> str:
        rate = self.images_deleted / max(elapsed_seconds, 1e-9)
        done = f"{self.images_deleted}"
        left = ""
        if self.images_expected:
            done += f" of {self.images_expected}"
            left = time_left(self.images_deleted / self.images_expected, elapsed_seconds)
        return (
            f"cleanup: {done} images, {self.bytes_freed / 1e6:.1f} MB freed, "
            f"{rate:.0f} images/s{left}"
        )


async def delete_expired(
    pool: db.Pool,
    store: BlobStore,
    *,
    batch_size: int,
    game_ids: list[UUID] | None = None,
    player_id: UUID | None = None,
    sha256s: list[str] | None = None,
    on_batch: Progress | None = None,
    as_of: datetime | None = None,
    expected: int | None = None,
) -> DeletionTally:
    """Delete expired images (optionally of some games, one player's, or those with some bytes)
    in batches until none is left but those whose files could not be deleted. With `as_of`,
    what will have expired by then; `expected`, how many that is (for the progress line)."""
    tally = DeletionTally(images_expected=expected)
    undeletable: list[UUID] = []  # skipped for the rest of this run; the next run retries them
    while True:
        with span("deletion.batch"):
            async with db.transaction(pool) as cur:
                doomed = await retention_rows.lock_expired_batch(
                    cur,
                    batch_size,
                    game_ids,
                    player_id,
                    sha256s=sha256s,
                    skip=undeletable,
                    as_of=as_of,
                )
                if not doomed:
                    break
                files = await store.delete_many(
                    blob for image in doomed for blob in _blobs_of(image)
                )
                stuck = {
                    image.image_id
                    for image in doomed
                    if any(blob.key in files.failed for blob in _blobs_of(image))
                }
                gone = [image.image_id for image in doomed if image.image_id not in stuck]
                fixups = await retention_rows.move_or_drop_cache_entries(cur, gone, as_of)
                tally.images_deleted += await retention_rows.delete_images(cur, gone)
                emptied = {image.game_id for image in doomed if image.image_id not in stuck}
                await retention_rows.forget_empty_games(cur, sorted(emptied))
            undeletable += stuck
            tally.count_failures(sorted(files.failed))
            tally.files_deleted += files.deleted
            tally.bytes_freed += files.bytes_freed
            tally.cache_entries_moved += fixups.moved
            tally.cache_entries_removed += fixups.removed
            if on_batch is not None:
                on_batch(tally)
    if tally.files_failed:
        log.warning(
            "files_not_deleted",
            count=tally.files_failed,
            keys=tally.failed_keys,
            retried="by the next cleanup run",
        )
    return tally


class _DryRunDone(Exception):
    """Ends a dry run's transaction: everything it did is rolled back."""


async def preview_expired(
    pool: db.Pool, store: BlobStore, *, batch_size: int, as_of: datetime | None = None
) -> DeletionTally:
    """Exactly what `delete_expired` would do now (or at `as_of`), changing nothing: its batches
    run in one transaction that is rolled back (the rows and cache entries counted as the real
    run counts them), and the store says what deleting the files would free (a file shared by
    hard links frees its bytes only with its last name). Rows the real run would find locked by
    another run are passed over alike."""
    tally = DeletionTally()
    blobs: list[BlobRef] = []
    try:
        async with db.transaction(pool) as cur:
            while doomed := await retention_rows.lock_expired_batch(cur, batch_size, as_of=as_of):
                gone = [image.image_id for image in doomed]
                blobs += [blob for image in doomed for blob in _blobs_of(image)]
                fixups = await retention_rows.move_or_drop_cache_entries(cur, gone, as_of)
                tally.images_deleted += await retention_rows.delete_images(cur, gone)
                tally.cache_entries_moved += fixups.moved
                tally.cache_entries_removed += fixups.removed
            raise _DryRunDone
    except _DryRunDone:
        pass
    files = await store.deletion_preview(blobs)
    tally.files_deleted, tally.bytes_freed = files.deleted, files.bytes_freed
    return tally


def _blobs_of(image: DoomedImage) -> list[BlobRef]:
    """The original (or, taken out of service, its quarantined file) and its renditions: they
    go together."""
    renditions = zip(image.rendition_paths, image.rendition_sizes, strict=True)
    original = (QUARANTINE if image.damaged else "") + image.image_path
    return [BlobRef(original, image.size_bytes)] + [
        BlobRef(path, size) for path, size in renditions
    ]
