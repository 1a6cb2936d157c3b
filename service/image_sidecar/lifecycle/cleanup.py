"""The cleanup run: expired images deleted (see `lifecycle.deletion`), then the orphan sweep.

One replica runs it at a time, by a lease row that works through PgBouncer. Files without rows
(a crash mid-upload, a failed delete) are swept once they are older than the grace period; the
sweep looks only where the write journal says a write did not settle, and at the staging
directory's temp files: its cost follows the crashes, not the store. The walk of the whole
store for files nobody journaled is the audit's (`lifecycle.audit`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Literal

import structlog

from image_sidecar import db
from image_sidecar.batch import Progress
from image_sidecar.config import RetentionSettings
from image_sidecar.db import cache as cache_rows
from image_sidecar.db import intents as intent_rows
from image_sidecar.db import retention as retention_rows
from image_sidecar.errors import SidecarError
from image_sidecar.lifecycle.deletion import DeletionTally, delete_expired, preview_expired
from image_sidecar.lifecycle.lease import run_leased
from image_sidecar.storage.base import BlobRef, BlobStore
from image_sidecar.tracing import traced

log = structlog.get_logger(__name__)


class CleanupFailed(SidecarError):
    """A cleanup run asked for over the API did not finish; its report says why."""

    status = 500
    code = "cleanup_failed"


@dataclass
class CleanupReport(DeletionTally):
    outcome: Literal["success", "skipped", "failed", "dry_run"] = "success"
    orphans_swept: int = 0
    seconds: float = 0.0
    as_of: str | None = None  # the instant taken as now, when not now
    # Why a run failed or was skipped; absent from the summary otherwise.
    reason: str | None = None

    def raise_if_failed(self) -> None:
        if self.outcome == "failed":
            raise CleanupFailed(f"cleanup failed: {self.reason}")


_INTENTS_PER_BATCH = 200


async def sweep_orphans(
    pool: db.Pool, store: BlobStore, *, now: float, grace_seconds: int, dry_run: bool = False
) -> int:
    """Delete the files that writes which never committed left under their journaled places
    (no row names them), once older than the grace period at `now` (epoch seconds), then the
    journal entries; and the staging directory's temp files as old. How many files went (or,
    dry, would go)."""
    cutoff = now - grace_seconds
    swept = 0
    after = 0
    while True:
        async with db.cursor(pool) as cur:
            intents = await intent_rows.unsettled(cur, grace_seconds, after, _INTENTS_PER_BATCH)
        if not intents:
            break
        after = intents[-1].intent_id
        settled = []
        for intent in intents:
            orphans = await unnamed(pool, await store.blobs_with_prefix(intent.key_prefix, cutoff))
            if dry_run:
                swept += len(orphans)
                continue
            swept += (await store.delete_many(orphans, only_if_older_than=cutoff)).deleted
            # Settled once nothing under the place is unnamed: a file written since the cutoff
            # (or one the store would not delete) is looked at again by a later run.
            left = await store.blobs_with_prefix(intent.key_prefix, now + 1)
            if not await unnamed(pool, left):
                settled.append(intent.intent_id)
        if settled:
            async with db.cursor(pool) as cur:
                await intent_rows.clear(cur, settled)
    if not dry_run:
        swept += await store.remove_partial_writes(cutoff)
    return swept


async def unnamed(pool: db.Pool, blobs: list[BlobRef]) -> list[BlobRef]:
    """Those of `blobs` that no row names (the sweep's and the audit's test of an orphan)."""
    if not blobs:
        return []
    async with db.cursor(pool) as cur:
        known = await retention_rows.known_keys(cur, [blob.key for blob in blobs])
    return [blob for blob in blobs if blob.key not in known]


@traced("cleanup.run", job=True)
async def run_cleanup(
    pool: db.Pool,
    store: BlobStore,
    settings: RetentionSettings,
    *,
    dry_run: bool = False,
    on_batch: Progress | None = None,
    as_of: datetime | None = None,
) -> CleanupReport:
    """One cleanup run, unless another replica holds the cleanup's lease. Logs one line and
    records the run in the database; the caller records it in its metrics. With `as_of`, that
    instant is now: what will have expired by then is deleted (or, dry, counted)."""
    report = CleanupReport(as_of=None if as_of is None else as_of.isoformat())
    await run_leased(
        pool,
        "cleanup",
        (retention_rows.take_cleanup_lease, retention_rows.end_cleanup_lease),
        report,
        lambda: _run_locked(pool, store, settings, report, dry_run, on_batch, as_of),
    )
    if report.outcome in ("success", "failed"):
        await _record_run(pool, report)
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
    on_batch: Progress | None,
    as_of: datetime | None,
) -> None:
    if dry_run:
        tally = await preview_expired(pool, store, batch_size=settings.batch_size, as_of=as_of)
    else:
        async with db.cursor(pool) as cur:
            expected = await retention_rows.count_expired(cur, as_of)
        tally = await delete_expired(
            pool,
            store,
            batch_size=settings.batch_size,
            on_batch=on_batch,
            as_of=as_of,
            expected=expected,
        )
    for name, value in asdict(tally).items():
        setattr(report, name, value)  # the run's report is its tally and more
    if dry_run:
        report.outcome = "dry_run"
    else:
        async with db.cursor(pool) as cur:
            await retention_rows.forget_emptied_games(cur)  # those purges emptied young
            await cache_rows.forget_lapsed_claims(cur)
    report.orphans_swept = await sweep_orphans(
        pool, store, now=time.time(), grace_seconds=settings.orphan_grace_seconds, dry_run=dry_run
    )
