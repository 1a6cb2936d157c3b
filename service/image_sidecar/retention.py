"""Expiry and deletion: the cleanup run, on-demand purges, and the orphan sweep.

Deletion happens in bounded batches. Each batch locks its expired rows, deletes their files,
moves or drops the cache entries that point at the deleted ones, deletes those rows, then
commits. Files go while the rows are still locked, so a new upload to the same path waits and
cannot lose its file; a crash before the commit leaves expired rows (never listed or reused)
that the next run finishes, a crash after it leaves nothing. A file the store refuses to delete
keeps its row, is reported, skipped for the rest of the run and retried by the next one, so one
bad file never stalls the cleanup. Files without rows (a crash mid-upload) are swept once they are
older than the grace period.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import structlog

from image_sidecar import db
from image_sidecar.config import RetentionSettings
from image_sidecar.db import images as image_rows
from image_sidecar.db import retention as retention_rows
from image_sidecar.db.retention import DoomedImage
from image_sidecar.errors import AmbiguousGame, DatabaseUnavailable, SidecarError
from image_sidecar.storage.base import BlobRef, BlobStore
from image_sidecar.storage.filesystem import FilesystemBlobStore
from image_sidecar.tasks import cancel_and_wait

if TYPE_CHECKING:
    from image_sidecar.metrics import SidecarMetrics

log = structlog.get_logger(__name__)


class CleanupFailed(SidecarError):
    """A cleanup run asked for over the API did not finish; its report says why."""

    status = 500
    code = "cleanup_failed"


# Failed keys named in a summary (cleanup, purge, backfill); the count covers them all.
FAILED_KEYS_SHOWN = 20


@dataclass
class DeletionTally:
    images_deleted: int = 0
    files_deleted: int = 0
    bytes_freed: int = 0
    cache_entries_moved: int = 0
    cache_entries_removed: int = 0
    files_failed: int = 0
    failed_keys: list[str] = field(default_factory=list)

    def count_failures(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.files_failed += 1
            if len(self.failed_keys) < FAILED_KEYS_SHOWN:
                self.failed_keys.append(key)


@dataclass
class CleanupReport(DeletionTally):
    outcome: Literal["success", "skipped", "failed", "dry_run"] = "success"
    orphans_swept: int = 0
    seconds: float = 0.0
    # Why a run failed or was skipped; absent from the summary otherwise.
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}

    def raise_if_failed(self) -> None:
        if self.outcome == "failed":
            raise CleanupFailed(f"cleanup failed: {self.reason}")


ProgressCallback = Callable[[DeletionTally], None]


async def delete_expired(
    pool: db.Pool,
    store: BlobStore,
    *,
    batch_size: int,
    game_ids: list[UUID] | None = None,
    player_id: UUID | None = None,
    sha256: str | None = None,
    on_batch: ProgressCallback | None = None,
) -> DeletionTally:
    """Delete expired images (optionally of some games, one player's, or those with some bytes)
    in batches until none is left but those whose files could not be deleted."""
    tally = DeletionTally()
    undeletable: list[UUID] = []  # skipped for the rest of this run; the next run retries them
    while True:
        async with db.transaction(pool) as cur:
            doomed = await retention_rows.lock_expired_batch(
                cur, batch_size, game_ids, player_id, sha256=sha256, skip=undeletable
            )
            if not doomed:
                break
            files = await store.delete_many(blob for image in doomed for blob in _blobs_of(image))
            stuck = {
                image.image_id
                for image in doomed
                if any(blob.key in files.failed for blob in _blobs_of(image))
            }
            gone = [image.image_id for image in doomed if image.image_id not in stuck]
            fixups = await retention_rows.move_or_drop_cache_entries(cur, gone)
            tally.images_deleted += await retention_rows.delete_images(cur, gone)
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


def _blobs_of(image: DoomedImage) -> list[BlobRef]:
    """The original and its renditions: they go together."""
    renditions = zip(image.rendition_paths, image.rendition_sizes, strict=True)
    return [BlobRef(image.image_path, image.size_bytes)] + [
        BlobRef(path, size) for path, size in renditions
    ]


async def sweep_orphans(
    pool: db.Pool, store: BlobStore, *, grace_seconds: int, dry_run: bool = False
) -> int:
    """Delete files that no row names, once they are older than the grace period."""
    cutoff = time.time() - grace_seconds
    swept = 0
    async for blobs in store.old_blobs(cutoff):
        async with db.cursor(pool) as cur:
            known = await retention_rows.known_keys(cur, [blob.key for blob in blobs])
        orphans = [blob for blob in blobs if blob.key not in known]
        if dry_run:
            swept += len(orphans)
        elif orphans:
            swept += (await store.delete_many(orphans, only_if_older_than=cutoff)).deleted
    if not dry_run and isinstance(store, FilesystemBlobStore):
        # Partial writes a crash left behind: only the filesystem writes through temp files.
        swept += await store.remove_stale_temp_files(cutoff)
    return swept


# The cleanup's lease lasts this long and is renewed at a third of it while the run goes on: a
# run whose process died blocks the next one for at most this long.
LEASE_SECONDS = 60.0


@asynccontextmanager
async def _cleanup_lease(pool: db.Pool) -> AsyncIterator[bool]:
    """Whether this run got the lease; held (renewed in the background) until the block ends.
    A lease row, not a session advisory lock, so that it works through PgBouncer."""
    holder = uuid.uuid4()
    async with db.cursor(pool) as cur:
        if not await retention_rows.take_cleanup_lease(cur, holder, LEASE_SECONDS):
            yield False
            return

    async def renew() -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                async with db.cursor(pool) as cur:
                    await retention_rows.take_cleanup_lease(cur, holder, LEASE_SECONDS)
            except DatabaseUnavailable:
                log.warning("cleanup_lease_not_renewed")

    renewing = asyncio.create_task(renew(), name="renew-cleanup-lease")
    try:
        yield True
    finally:
        await cancel_and_wait(renewing)
        async with db.cursor(pool) as cur:
            await retention_rows.end_cleanup_lease(cur, holder)


async def run_cleanup(
    pool: db.Pool,
    store: BlobStore,
    settings: RetentionSettings,
    *,
    dry_run: bool = False,
    on_batch: ProgressCallback | None = None,
    metrics: SidecarMetrics | None = None,
) -> CleanupReport:
    """One cleanup run, unless another replica holds the cleanup's lease. Logs one line, records
    the run in the database and, when given, in this process's metrics."""
    started = time.monotonic()
    report = CleanupReport()
    try:
        async with _cleanup_lease(pool) as held:
            if not held:
                report.outcome = "skipped"
                report.reason = "another cleanup run holds the lease"
            else:
                await _run_locked(pool, store, settings, report, dry_run, on_batch)
    except Exception as exc:
        report.outcome = "failed"
        report.reason = str(exc) or type(exc).__name__
        log.exception("cleanup_error")
    report.seconds = round(time.monotonic() - started, 3)
    if report.outcome in ("success", "failed"):
        await _record_run(pool, report)
    if metrics is not None:
        metrics.cleanup_finished(report)
    log.info("cleanup_run", **report.as_dict())
    return report


async def _record_run(pool: db.Pool, report: CleanupReport) -> None:
    try:
        async with db.cursor(pool) as cur:
            await retention_rows.record_run(
                cur, report.outcome, report.images_deleted, report.bytes_freed, report.seconds
            )
    except SidecarError as exc:  # the run itself is done; only its record is lost
        log.warning("cleanup_run_not_recorded", error=exc.message)


async def _run_locked(
    pool: db.Pool,
    store: BlobStore,
    settings: RetentionSettings,
    report: CleanupReport,
    dry_run: bool,
    on_batch: ProgressCallback | None,
) -> None:
    if dry_run:
        async with db.cursor(pool) as cur:
            totals = await retention_rows.expired_totals(cur)
        report.images_deleted, report.files_deleted, report.bytes_freed = totals
        report.orphans_swept = await sweep_orphans(
            pool, store, grace_seconds=settings.orphan_grace_seconds, dry_run=True
        )
        report.outcome = "dry_run"
        return
    tally = await delete_expired(pool, store, batch_size=settings.batch_size, on_batch=on_batch)
    for name, value in asdict(tally).items():
        setattr(report, name, value)
    async with db.cursor(pool) as cur:
        await retention_rows.forget_empty_games(cur)
    report.orphans_swept = await sweep_orphans(
        pool, store, grace_seconds=settings.orphan_grace_seconds
    )


@dataclass(frozen=True)
class Purge:
    game_ids: list[UUID]
    tally: DeletionTally


async def purge(
    pool: db.Pool,
    store: BlobStore,
    game_code: str,
    player_id: UUID | None = None,
    *,
    game_id: UUID | None = None,
    all_games: bool = False,
    batch_size: int,
) -> Purge:
    """Delete a game's (or one player's) images now; bytes another game reuses survive.

    Room codes are recycled, so the call never guesses: with several games holding live images
    under the code, it needs `game_id` (that game) or `all_games`, else AmbiguousGame.
    """
    async with db.cursor(pool) as cur:
        holding = await image_rows.games_with_code(cur, game_code, player_id)
        if game_id is not None:
            targets = [game_id] if game_id in holding else []
        elif all_games or len(holding) <= 1:
            targets = holding
        else:
            raise AmbiguousGame(game_code, holding)
        if targets:
            await retention_rows.expire_now(cur, targets, player_id)
    tally = DeletionTally()
    if targets:
        tally = await delete_expired(
            pool, store, batch_size=batch_size, game_ids=targets, player_id=player_id
        )
    log.info(
        "purge",
        game_code=game_code,
        game_ids=[str(target) for target in targets],
        player_id=player_id and str(player_id),
        **asdict(tally),
    )
    return Purge(targets, tally)
