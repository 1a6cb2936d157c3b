"""Renditions and perceptual hashes for the images stored before they existed
(`image-sidecar renditions --backfill`).

It walks the live images that have none, in image_id order, one transaction per image: the
image's row is locked, its renditions written (rendered from the original, or, for bytes another
image already has renditions of, linked like a cache reuse), their rows inserted and the
decoded width, height and placeholder recorded. Interrupt it at any point and run it again: it
goes on with what is still missing. An image that cannot be read or decoded is reported and
skipped, never retried within the run.

Then it walks the bytes of live images that have no perceptual hash (images.likeness), in
sha256 order, decodes one copy of each and records the hash on every record of them, so that a
takedown finds them as look-alikes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from image_sidecar import db
from image_sidecar.batch import BatchReport, Progress, key_share, time_left
from image_sidecar.db import images as image_rows
from image_sidecar.db.images import Unrendered
from image_sidecar.errors import SidecarError
from image_sidecar.images.decoding import planned_renditions
from image_sidecar.images.keys import (
    key_prefix,
    made_links,
    rendition_blobs,
    renditions_beside,
    stored_renditions,
)
from image_sidecar.images.pool import ImageProcessor
from image_sidecar.images.writer import transaction_with_blobs
from image_sidecar.storage.base import BlobStore
from image_sidecar.tracing import span, traced

log = structlog.get_logger(__name__)

_BATCH = 100


@dataclass
class BackfillReport(BatchReport):
    images: int = 0
    rendered: int = 0
    linked: int = 0
    hashed: int = 0  # records given their perceptual hash
    failed: int = 0
    seconds: float = 0.0

    # Where the walk stands, for the progress line only: its phase (renditions, in image_id
    # order, then perceptual hashes, in sha256 order) and the share of that phase's keys behind
    # it (`batch.key_share`: both keys are spread evenly).
    phase: str = "renditions"
    walked: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        summary = super().as_dict()
        del summary["phase"], summary["walked"]
        return summary

    def progress_line(self, elapsed_seconds: float) -> str:
        # Counting each phase as half of the work: a rough time left, but one known at once.
        whole = (self.walked + (self.phase == "hashes")) / 2
        return (
            f"renditions: {self.images} images, {self.hashed} hashed ({self.failed} failed); "
            f"{self.phase}: {self.walked:.0%} walked{time_left(whole, elapsed_seconds)}"
        )


@traced("backfill.run", job=True)
async def backfill_renditions(
    pool: db.Pool,
    store: BlobStore,
    processor: ImageProcessor,
    *,
    on_progress: Progress | None = None,
) -> BackfillReport:
    started = time.monotonic()
    report = BackfillReport()
    unreadable: set[str] = set()  # reported once, not again by the hashes' walk
    after = None
    while True:
        with span("backfill.batch"):
            async with db.cursor(pool) as cur:
                batch = await image_rows.without_renditions(cur, after, _BATCH)
            if not batch:
                break
            for image in batch:
                after = image.image_id
                report.walked = key_share(after)
                try:
                    linked = await _backfill_one(pool, store, processor, image)
                except SidecarError as exc:
                    report.count_failure(image.image_path)
                    unreadable.add(image.image_path)
                    log.warning("backfill_failed", image_path=image.image_path, error=exc.message)
                    continue
                if linked is None:
                    continue  # done by someone else meanwhile
                report.images += 1
                report.linked += linked
                report.rendered += not linked
                if on_progress is not None:
                    on_progress(report)
    await _backfill_perceptual_hashes(pool, store, processor, report, unreadable, on_progress)
    report.seconds = round(time.monotonic() - started, 3)
    log.info("renditions_backfilled", **report.as_dict())
    return report


async def _backfill_perceptual_hashes(
    pool: db.Pool,
    store: BlobStore,
    processor: ImageProcessor,
    report: BackfillReport,
    unreadable: set[str],
    on_progress: Progress | None,
) -> None:
    after = ""
    report.phase, report.walked = "hashes", 0.0
    while True:
        with span("backfill.hashes_batch"):
            async with db.cursor(pool) as cur:
                batch = await image_rows.without_perceptual_hash(cur, after, _BATCH)
            if not batch:
                return
            for unhashed in batch:
                after = unhashed.sha256
                report.walked = key_share(after)
                if unhashed.image_path in unreadable:
                    continue
                try:
                    data = await store.read(unhashed.image_path)
                    hashes = await processor.lookalike_hashes(data, crops=False)
                except SidecarError as exc:
                    report.count_failure(unhashed.image_path)
                    log.warning(
                        "backfill_failed", image_path=unhashed.image_path, error=exc.message
                    )
                    continue
                if not hashes:
                    continue  # too small or flat to have a look: matched by its bytes only
                async with db.transaction(pool) as cur:
                    report.hashed += await image_rows.set_perceptual_hash(
                        cur, unhashed.sha256, hashes[0]
                    )
                if on_progress is not None:
                    on_progress(report)


async def _backfill_one(
    pool: db.Pool, store: BlobStore, processor: ImageProcessor, image: Unrendered
) -> bool | None:
    """Whether the renditions were linked from a twin (True) or rendered (False); None when the
    image needs nothing any more."""
    async with db.cursor(pool) as cur:
        twin = await image_rows.rendered_twin(cur, image.sha256)
    rendered = None
    if twin is None:
        rendered = await processor.inspect(await store.read(image.image_path))
    async with transaction_with_blobs(pool, store, [key_prefix(image.image_path)]) as (
        cur,
        staged,
    ):
        if not await image_rows.lock_unrendered(cur, image.image_id):
            return None
        if twin is not None:
            renditions = renditions_beside(image.image_path, twin.renditions)
            await staged.link_many(made_links(twin.renditions, renditions))
            facts = (twin.width, twin.height, twin.placeholder)
        else:
            assert rendered is not None
            planned = planned_renditions(
                rendered.width, rendered.height, processor.rendition_formats
            )
            renditions = stored_renditions(image.image_path, planned, rendered.renditions)
            blobs, links = rendition_blobs(
                image.image_path, image.sha256, renditions, rendered.renditions
            )
            await staged.put_many(blobs)
            await staged.link_many(links)
            facts = (rendered.width, rendered.height, rendered.placeholder)
        await image_rows.insert_renditions(cur, image.image_id, renditions)
        await image_rows.set_decoded_facts(cur, image.image_id, *facts)
    return twin is not None
