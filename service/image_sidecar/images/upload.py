"""An upload's bytes as the source of a new record: reviewed by the moderation hook while they
are decoded, refused if they were taken down or look like a picture that was, stored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from decimal import Decimal
from uuid import UUID

from image_sidecar import db
from image_sidecar.db import cache as cache_rows
from image_sidecar.db import stats as stats_rows
from image_sidecar.errors import BlockedContent, RejectedByModeration
from image_sidecar.images import writer
from image_sidecar.images.decoding import InspectedImage, planned_renditions
from image_sidecar.images.formats import sniff
from image_sidecar.images.keys import image_key, rendition_blobs, stored_renditions
from image_sidecar.images.pool import ImageProcessor
from image_sidecar.images.writer import PlannedRecord, Registration, StagedBlobs
from image_sidecar.models import ImageMetadata, ImageRecord, StoredBytes, StoredRendition
from image_sidecar.prompt_cache.costs import GenerationCosts
from image_sidecar.prompt_cache.lookup import ClaimNotFound, release
from image_sidecar.prompt_cache.prompts import prompt_hash
from image_sidecar.safety.lookalikes import LookalikeBlocklist
from image_sidecar.safety.moderation import ModerationHook
from image_sidecar.storage.base import BlobStore, NewBlob


async def store_upload(
    pool: db.Pool,
    store: BlobStore,
    meta: ImageMetadata,
    upload: NewImage,
    *,
    default_retention_days: int,
    public_base_url: str,
) -> Registration:
    """Register an upload; one refused for what it shows (by the hook, or as content taken
    down) gives its prompt's claim back, so that the next player is not left waiting for a
    picture that will never come."""
    try:
        return await writer.register(
            pool,
            store,
            meta,
            upload,
            default_retention_days=default_retention_days,
            public_base_url=public_base_url,
        )
    except (RejectedByModeration, BlockedContent):
        if upload.claim_token is not None:
            with contextlib.suppress(ClaimNotFound):
                await release(pool, upload.claim_token, reason="upload refused")
        raise


class NewImage:
    """Bytes a game server uploads after a paid AI call; they become the prompt's cache entry.
    They are decoded (in the processor's pool) before anything is written: the client's
    Content-Type is never trusted, nor a header that sniffs right over a broken file."""

    def __init__(
        self,
        data: bytes,
        processor: ImageProcessor,
        costs: GenerationCosts,
        blocklist: LookalikeBlocklist,
        *,
        claim_token: UUID | None = None,
        moderation: ModerationHook | None = None,
        text_fields: Mapping[str, str] | None = None,
    ) -> None:
        self.data = data
        self.processor = processor
        self.costs = costs
        self.blocklist = blocklist
        self.claim_token = claim_token
        self.moderation = moderation
        self.text_fields = text_fields or {}
        self._blob: StoredBytes | None = None
        self._renditions: tuple[StoredRendition, ...] = ()
        self._links: list[tuple[str, str, int]] = []  # renditions that are the original's bytes

    async def prepare(self, meta: ImageMetadata) -> list[NewBlob]:
        """Decode (and make the renditions made at upload) while the hook reviews the bytes;
        the original and those renditions are the bytes to stage."""
        image = await self._decoded_and_reviewed()
        blob = self._blob = StoredBytes(
            image_path=image_key(meta, image.image_type.extension),
            content_type=image.image_type.content_type,
            size_bytes=len(self.data),
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            placeholder=image.placeholder,
            perceptual_hash=image.perceptual_hash,
        )
        planned = planned_renditions(image.width, image.height, self.processor.rendition_formats)
        self._renditions = stored_renditions(blob.image_path, planned, image.renditions)
        original = NewBlob(blob.image_path, self.data, blob.content_type, blob.sha256)
        blobs, self._links = rendition_blobs(
            blob.image_path, blob.sha256, self._renditions, image.renditions
        )
        return [original, *blobs]

    async def plan(self, cur: db.Cursor, meta: ImageMetadata) -> PlannedRecord:
        blob, renditions = self._blob, self._renditions
        assert blob is not None  # register() prepares before it plans
        await self.blocklist.refuse_if_blocked(cur, blob.sha256, blob.perceptual_hash)
        key = None
        if meta.prompt is not None:
            key = prompt_hash(meta.prompt, meta.art_style, meta.model, meta.size)
        return PlannedRecord(meta, blob, key, renditions=renditions)

    async def _decoded_and_reviewed(self) -> InspectedImage:
        """The decode, and the hook's review at the same time (the upload waits for the slower
        of the two, not for both); a refusal cancels the decode."""
        if self.moderation is None:
            return await self.processor.inspect(self.data)
        content_type = sniff(self.data).content_type  # not an image: 415, the hook not called
        decoding = asyncio.ensure_future(self.processor.inspect(self.data))
        try:
            await self.moderation.review(self.data, content_type, self.text_fields)
        except BaseException:
            decoding.cancel()
            decoding.add_done_callback(lambda done: done.cancelled() or done.exception())
            raise
        return await decoding

    async def write(
        self, cur: db.Cursor, staged: StagedBlobs, record: ImageRecord, plan: PlannedRecord
    ) -> Decimal:
        if plan.prompt_hash is not None and record.prompt is not None:
            await cache_rows.remember_upload(
                cur, plan.prompt_hash, record.image_id, record.prompt, self.claim_token
            )
        await staged.publish_pending()
        await staged.link_many(self._links)
        cost = record.generation_cost_usd
        await stats_rows.record_usage(
            cur,
            record.ai_service,
            generated=1,
            bytes_stored=record.size_bytes,
            generation_cost_usd=self.costs.for_service(record.ai_service) if cost is None else cost,
        )
        return Decimal(0)
