"""The scrub: every live original and rendition read back and compared with its record, so that
damaged bytes are found before a player meets them (`image-sidecar scrub`, `POST
/api/admin/scrub`, IMAGE_SCRUB_CRON).

It goes in cycles: the whole store once every IMAGE_SCRUB_CYCLE_DAYS. A scheduled run checks a
slice, the share of the stored bytes that the time since the last slice is of the cycle (a
daily run of a 30-day cycle: a thirtieth, about what a day stores), and the next run goes on
from there; a run asked for by hand finishes the cycle under way. Where the store keeps each
object's SHA-256 itself (S3's checksum), an object is verified by a HEAD, not a download.

For each image in service, in image_id order: its original is read and its size and SHA-256
compared with the record. When it is intact, each made rendition is checked the same way (one
made before renditions recorded their digest is checked by its size, then its digest
recorded); a missing or damaged rendition is made again from the original. A missing or
damaged original is restored from an intact copy with the same SHA-256 where one exists
(another image's own copy: a reuse on S3). Otherwise the image is taken out of service: its
file moves to `quarantine/<key>`, its URL answers 410 `image_damaged`, its cache entry moves
to a copy or goes, and the summary names it (image_id and key).

Reads are paced to IMAGE_SCRUB_MAX_BYTES_PER_SECOND so that a scrub never starves serving;
hashing runs in a thread. One replica scrubs at a time (a lease); where a run stopped is
recorded after each batch, and the next run goes on from there. A run that finds nothing it
cannot repair is a success.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Literal

import structlog

from image_sidecar import db
from image_sidecar.batch import BatchReport, Pace, Progress, time_left
from image_sidecar.db import renditions as rendition_rows
from image_sidecar.db import retention as retention_rows
from image_sidecar.db import scrub as scrub_rows
from image_sidecar.db import stats as stats_rows
from image_sidecar.db.scrub import QUARANTINE, Checked
from image_sidecar.errors import ImageDamaged, SidecarError
from image_sidecar.images.formats import of_key
from image_sidecar.images.pool import ImageProcessor
from image_sidecar.images.renditions import RenditionMaker
from image_sidecar.lifecycle.lease import run_leased
from image_sidecar.models import StoredRendition
from image_sidecar.storage.base import BlobNotFound, BlobRef, BlobStore
from image_sidecar.tracing import span, traced

log = structlog.get_logger(__name__)

_BATCH = 100
Problem = Literal["missing", "damaged"]


@dataclass
class ScrubReport(BatchReport):
    outcome: Literal["success", "skipped", "failed"] = "success"
    files_checked: int = 0
    bytes_checked: int = 0
    missing: int = 0
    damaged: int = 0
    repaired: int = 0
    # Taken out of service: [{"image_id", "key"}].
    unrecoverable: list[dict[str, str]] = field(default_factory=list)
    files_verified_by_checksum: int = 0  # by the store's own SHA-256, without reading them
    bytes_read: int = 0
    resumed_after: str | None = None  # where the cycle under way stood
    slice_bytes: int | None = None  # a scheduled run's share of the stored bytes
    cycle_completed: bool = False  # the run reached the last image: a new cycle begins
    seconds: float = 0.0
    reason: str | None = None  # why a run failed or was skipped

    def progress_line(self, elapsed_seconds: float) -> str:
        mib = self.bytes_checked / 2**20
        rate = mib / max(elapsed_seconds, 0.001)
        line = (
            f"scrub: {self.files_checked} files, {mib:.0f} MiB ({rate:.1f} MiB/s), "
            f"{self.missing} missing, {self.damaged} damaged, {self.repaired} repaired, "
            f"{len(self.unrecoverable)} unrecoverable"
        )
        if self.slice_bytes:
            done = min(self.bytes_checked / self.slice_bytes, 1)
            line += f"; slice {done:.0%}{time_left(done, elapsed_seconds)}"
        return line


@traced("scrub.run", job=True)
async def run_scrub(
    pool: db.Pool,
    store: BlobStore,
    processor: ImageProcessor,
    *,
    max_bytes_per_second: int,
    cycle_days: int | None = None,
    on_progress: Progress | None = None,
) -> ScrubReport:
    """One scrub run, unless another replica holds the scrub's lease: with `cycle_days`, the
    slice that keeps that cycle (the schedule's); without, to the end of the cycle under way.
    Logs one line; the caller records it in its metrics."""
    report = ScrubReport()
    scrubber = _Scrubber(pool, store, processor, report, max_bytes_per_second)
    return await run_leased(
        pool,
        "scrub",
        (scrub_rows.take_lease, scrub_rows.give_back_lease),
        report,
        lambda: scrubber.run(cycle_days, on_progress),
    )


class _Scrubber:
    def __init__(
        self,
        pool: db.Pool,
        store: BlobStore,
        processor: ImageProcessor,
        report: ScrubReport,
        max_bytes_per_second: int,
    ) -> None:
        self.pool = pool
        self.store = store
        self.report = report
        self.pace = Pace(max_bytes_per_second)
        self.maker = RenditionMaker(pool, store, processor, wait_seconds=60)

    async def run(self, cycle_days: int | None, on_progress: Progress | None) -> None:
        async with db.cursor(self.pool) as cur:
            where = await scrub_rows.position(cur)
            if cycle_days is not None:
                stored = (await stats_rows.storage_totals(cur)).stored_bytes
                self.report.slice_bytes = _slice(stored, cycle_days, where)
        after = where.resume_after
        self.report.resumed_after = None if after is None else str(after)
        while True:
            with span("scrub.batch"):
                async with db.cursor(self.pool) as cur:
                    batch = await scrub_rows.batch(cur, after, _BATCH)
                for image in batch:
                    await self.check(image)
                after = batch[-1].image_id if batch else None
                async with db.cursor(self.pool) as cur:
                    await scrub_rows.checked_up_to(cur, after)  # None: the cycle is complete
                if on_progress is not None:
                    on_progress(self.report)
            slice_done = (
                self.report.slice_bytes is not None
                and self.report.bytes_checked >= self.report.slice_bytes
            )
            if after is None or slice_done:
                self.report.cycle_completed = after is None
                async with db.cursor(self.pool) as cur:
                    await scrub_rows.slice_done(cur)
                return

    async def check(self, image: Checked) -> None:
        original = await self.verified(image.image_path, image.size_bytes, image.sha256)
        if original is not True:
            self.count(original, image.image_path)
            if not await self.restored(image):
                await self.take_out_of_service(image)
                return
            self.report.repaired += 1
        for rendition in image.renditions:
            if rendition.made:
                await self.check_rendition(rendition)

    async def verified(self, key: str, size: int, sha256: str | None) -> Literal[True] | Problem:
        """True when the blob under `key` matches the record (any blob of the right size when
        no digest is recorded), by the store's own checksum where it keeps one, else by reading
        it; else what is wrong."""
        if sha256 is not None:
            try:
                kept = await self.store.stored_sha256(key)
            except BlobNotFound:
                return "missing"
            if kept == sha256:
                self.report.files_checked += 1
                self.report.files_verified_by_checksum += 1
                self.report.bytes_checked += size
                return True
        found = await self.read(key, size, sha256)
        return found if isinstance(found, str) else True

    async def read(self, key: str, size: int, sha256: str | None) -> bytes | Problem:
        """The bytes under `key` when they match the record, read back; else what is wrong."""
        try:
            data = await self.store.read(key)
        except BlobNotFound:
            return "missing"
        await self.pace.advance(len(data))
        self.report.files_checked += 1
        self.report.bytes_checked += len(data)
        self.report.bytes_read += len(data)
        if len(data) != size:
            return "damaged"
        if sha256 is not None and await asyncio.to_thread(_sha256, data) != sha256:
            return "damaged"
        return data

    async def check_rendition(self, rendition: StoredRendition) -> None:
        assert rendition.size_bytes is not None
        if rendition.sha256 is not None:
            found: Literal[True] | bytes | Problem = await self.verified(
                rendition.image_path, rendition.size_bytes, rendition.sha256
            )
        else:
            found = await self.read(rendition.image_path, rendition.size_bytes, None)
        if found is True:
            return
        if isinstance(found, bytes):
            if rendition.sha256 is None:
                async with db.cursor(self.pool) as cur:
                    await scrub_rows.record_rendition(
                        cur, rendition.image_path, await asyncio.to_thread(_sha256, found)
                    )
            return
        self.count(found, rendition.image_path)
        try:
            await self.store.delete_many([BlobRef(rendition.image_path, 0)])
            async with db.cursor(self.pool) as cur:
                await rendition_rows.unmade(cur, rendition.image_path)
            await self.maker.ensure(rendition.image_path)
        except SidecarError as exc:  # left unmade: the next request or scrub makes it
            log.warning("scrub_rendition_not_made", key=rendition.image_path, error=exc.message)
            return
        self.report.repaired += 1

    async def restored(self, image: Checked) -> bool:
        """Whether an intact copy of the bytes was found and written back under the key."""
        async with db.cursor(self.pool) as cur:
            copies = await scrub_rows.copies(cur, image.sha256, but=image.image_path)
        for key in copies:
            copy = await self.read(key, image.size_bytes, image.sha256)
            if isinstance(copy, bytes):
                kind = of_key(image.image_path)
                assert kind is not None  # a record's key names its type
                await self.store.put(image.image_path, copy, kind.content_type, image.sha256)
                log.warning("scrub_restored", key=image.image_path, source=key)
                return True
        return False

    async def take_out_of_service(self, image: Checked) -> None:
        if await self.store.exists(image.image_path):
            await self.store.link(image.image_path, QUARANTINE + image.image_path)
            await self.store.delete_many([BlobRef(image.image_path, 0)])
        async with db.transaction(self.pool) as cur:
            await scrub_rows.take_out_of_service(cur, image.image_id)
            await retention_rows.move_or_drop_cache_entries(cur, [image.image_id])
        self.report.unrecoverable.append({"image_id": str(image.image_id), "key": image.image_path})
        log.error("scrub_unrecoverable", image_id=str(image.image_id), key=image.image_path)

    def count(self, problem: Problem, key: str) -> None:
        setattr(self.report, problem, getattr(self.report, problem) + 1)
        log.warning("scrub_problem", problem=problem, key=key)


def is_quarantined(key: str) -> bool:
    """Whether `key` names a damaged original's file kept for a look: never served."""
    return key.startswith(QUARANTINE)


async def refuse_if_out_of_service(pool: db.Pool, key: str) -> None:
    """ImageDamaged when `key`, found missing, is the original of an image the scrub took out of
    service (asked only when a file is not found, never on the way to one that is)."""
    async with db.cursor(pool) as cur:
        if await scrub_rows.is_damaged(cur, key):
            raise ImageDamaged(f"the image {key} was found damaged and no intact copy was left")


def _slice(stored_bytes: int, cycle_days: int, where: scrub_rows.ScrubPosition) -> int:
    """The bytes a scheduled run checks: the share of the store that the time since the last
    slice (a day before the first) is of the cycle, so that any schedule covers the store once
    a cycle; at least one byte (one batch)."""
    since = where.seconds_since_last_slice
    share = min((86_400 if since is None else since) / (cycle_days * 86_400), 1.0)
    return max(1, round(stored_bytes * share))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
