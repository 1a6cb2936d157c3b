"""An upload's bytes as the source of a new record: decoded, refused if blocked, stored."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from image_sidecar import db
from image_sidecar.db import blocklist as blocklist_rows
from image_sidecar.db import cache as cache_rows
from image_sidecar.db import stats as stats_rows
from image_sidecar.errors import BlockedContent
from image_sidecar.images.decoding import ImageProcessor, planned_renditions
from image_sidecar.images.keys import image_key, rendition_blobs, stored_renditions
from image_sidecar.images.writer import PlannedRecord, StagedBlobs
from image_sidecar.models import ImageMetadata, ImageRecord, StoredBytes, StoredRendition
from image_sidecar.prompt_cache.costs import GenerationCosts
from image_sidecar.prompt_cache.prompts import prompt_hash
from image_sidecar.storage.base import NewBlob


class NewImage:
    """Bytes a game server uploads after a paid AI call; they become the prompt's cache entry.
    They are decoded (in the processor's pool) before anything is written: the client's
    Content-Type is never trusted, nor a header that sniffs right over a broken file."""

    def __init__(
        self,
        data: bytes,
        processor: ImageProcessor,
        costs: GenerationCosts,
        claim_token: UUID | None = None,
    ) -> None:
        self.data = data
        self.processor = processor
        self.costs = costs
        self.claim_token = claim_token
        self._blob: StoredBytes | None = None
        self._renditions: tuple[StoredRendition, ...] = ()

    async def prepare(self, meta: ImageMetadata) -> list[NewBlob]:
        """Decode (and make the renditions made at upload); the original and those renditions
        are the bytes to stage."""
        image = await self.processor.inspect(self.data)
        blob = self._blob = StoredBytes(
            image_path=image_key(meta, image.image_type.extension),
            content_type=image.image_type.content_type,
            size_bytes=len(self.data),
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            placeholder=image.placeholder,
        )
        planned = planned_renditions(image.width, image.height, self.processor.rendition_formats)
        self._renditions = stored_renditions(blob.image_path, planned, image.renditions)
        original = NewBlob(blob.image_path, self.data, blob.content_type, blob.sha256)
        return [original, *rendition_blobs(self._renditions, image.renditions)]

    async def plan(self, cur: db.Cursor, meta: ImageMetadata) -> PlannedRecord:
        blob, renditions = self._blob, self._renditions
        assert blob is not None  # register() prepares before it plans
        if await blocklist_rows.is_blocked(cur, blob.sha256):
            raise BlockedContent("these image bytes were taken down and cannot be stored again")
        key = None
        if meta.prompt is not None:
            key = prompt_hash(meta.prompt, meta.art_style, meta.model, meta.size)
        return PlannedRecord(meta, blob, key, renditions=renditions)

    async def write(
        self, cur: db.Cursor, staged: StagedBlobs, record: ImageRecord, plan: PlannedRecord
    ) -> Decimal:
        if plan.prompt_hash is not None and record.prompt is not None:
            await cache_rows.remember_upload(
                cur, plan.prompt_hash, record.image_id, record.prompt, self.claim_token
            )
        await staged.publish_pending()
        cost = record.generation_cost_usd
        await stats_rows.record_usage(
            cur,
            record.ai_service,
            generated=1,
            bytes_stored=record.size_bytes,
            generation_cost_usd=self.costs.for_service(record.ai_service) if cost is None else cost,
        )
        return Decimal(0)
