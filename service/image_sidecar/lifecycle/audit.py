"""The audit: the walk of the whole store for files that no row names (`image-sidecar audit`,
`IMAGE_AUDIT_CRON`).

The nightly cleanup only looks where the write journal says a write did not settle; a file put
there by hand, left by a bug or by a version before the journal is found here. The walk goes in
key order, one part of the store at a time (a game's directory, a page of objects): each part's
files older than the grace period are looked up by index, those no row names are reported (the
first ones by key) and deleted unless it is a dry run. Paced to IMAGE_AUDIT_FILES_PER_SECOND;
one replica at a time (a lease); where the walk stands is recorded after each part, so an
interrupted run (or a run cut short by `--max-seconds`) is continued by the next one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import structlog

from image_sidecar import db
from image_sidecar.batch import BatchReport, Pace, Progress
from image_sidecar.db import audit as audit_rows
from image_sidecar.db import stats as stats_rows
from image_sidecar.lifecycle.cleanup import unnamed
from image_sidecar.lifecycle.lease import run_leased
from image_sidecar.storage.base import BlobRef, BlobStore
from image_sidecar.tracing import span, traced

log = structlog.get_logger(__name__)

ORPHAN_KEYS_SHOWN = 20


@dataclass
class AuditReport(BatchReport):
    # success: the walk reached the end; partial: stopped at --max-seconds (the next run goes on)
    outcome: Literal["success", "partial", "skipped", "failed", "dry_run"] = "success"
    files_checked: int = 0
    files_expected: int | None = None  # the store's files by the database's totals
    orphans_found: int = 0
    orphan_bytes: int = 0
    orphans_deleted: int = 0
    orphan_keys: list[str] = field(default_factory=list)  # the first ones found
    resumed_after: str | None = None
    walk_started_at: str | None = None
    seconds: float = 0.0
    reason: str | None = None

    def progress_line(self, elapsed_seconds: float) -> str:
        rate = self.files_checked / max(elapsed_seconds, 1e-9)
        line = f"audit: {self.files_checked} files ({rate:.0f}/s), {self.orphans_found} orphans"
        if self.files_expected and rate > 0:
            left = max(self.files_expected - self.files_checked, 0)
            line += f", at most {left / rate / 60:.0f} min left"  # a resumed walk: fewer
        return line


@traced("audit.run", job=True)
async def run_audit(
    pool: db.Pool,
    store: BlobStore,
    *,
    grace_seconds: int,
    files_per_second: int,
    dry_run: bool = False,
    max_seconds: float | None = None,
    on_progress: Progress | None = None,
) -> AuditReport:
    """One audit run, unless another replica holds the audit's lease. Logs one line; the caller
    records it in its metrics."""
    report = AuditReport()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    pace = Pace(files_per_second)
    return await run_leased(
        pool,
        "audit",
        (audit_rows.take_lease, audit_rows.give_back_lease),
        report,
        lambda: _walk(pool, store, report, grace_seconds, pace, dry_run, deadline, on_progress),
    )


async def _walk(
    pool: db.Pool,
    store: BlobStore,
    report: AuditReport,
    grace_seconds: int,
    pace: Pace,
    dry_run: bool,
    deadline: float | None,
    on_progress: Progress | None,
) -> None:
    async with db.cursor(pool) as cur:
        where = await audit_rows.position(cur)
        report.files_expected = (await stats_rows.storage_totals(cur)).stored_files
    report.resumed_after = where.resume_after
    started = where.walk_started_at
    report.walk_started_at = None if started is None else started.isoformat()
    cutoff = time.time() - grace_seconds
    async for chunk in store.walk(cutoff, after=where.resume_after):
        with span("audit.part"):
            report.files_checked += chunk.seen
            orphans = await unnamed(pool, chunk.old)
            if orphans:
                _found(report, orphans)
                if not dry_run:
                    deleted = await store.delete_many(orphans, only_if_older_than=cutoff)
                    report.orphans_deleted += deleted.deleted
            if not dry_run:
                async with db.cursor(pool) as cur:
                    await audit_rows.walked_to(cur, chunk.position)
        if on_progress is not None:
            on_progress(report)
        await pace.advance(chunk.seen)
        if deadline is not None and time.monotonic() > deadline:
            report.outcome = "dry_run" if dry_run else "partial"
            return
    if dry_run:
        report.outcome = "dry_run"
        return
    async with db.cursor(pool) as cur:
        await audit_rows.walked_to(cur, None)


def _found(report: AuditReport, orphans: list[BlobRef]) -> None:
    report.orphans_found += len(orphans)
    report.orphan_bytes += sum(blob.size_bytes for blob in orphans)
    room = ORPHAN_KEYS_SHOWN - len(report.orphan_keys)
    report.orphan_keys += [blob.key for blob in orphans[:room]]
    for blob in orphans[:room]:
        log.warning("audit_orphan", key=blob.key, size_bytes=blob.size_bytes)
