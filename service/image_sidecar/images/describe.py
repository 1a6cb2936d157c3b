"""Describing a picture saved before its sentence was known (the story's cacheImageMetadata)."""

from __future__ import annotations

from uuid import UUID

from image_sidecar import db
from image_sidecar.db import cache as cache_rows
from image_sidecar.db import images as image_rows
from image_sidecar.errors import Conflict
from image_sidecar.images.listing import ImageNotFound
from image_sidecar.models import Description, ImageRecord
from image_sidecar.prompt_cache.prompts import prompt_hash


async def describe(pool: db.Pool, image_id: UUID, description: Description) -> ImageRecord:
    """Give a picture saved without its sentence its sentence, prompt and style (the story's
    cacheImageMetadata), and make it its prompt's cache entry as an upload would have.

    Describing twice alike answers the record again; a different description is a Conflict
    naming the field, as is a style or parameter that contradicts what the upload said.
    """
    async with db.transaction(pool) as cur:
        record = await image_rows.lock_live_image(cur, image_id)
        if record is None:
            raise ImageNotFound(f"no live image {image_id}")
        merged = _merged_description(record, description)
        if record.completed_sentence is not None:
            return record  # the same description again: nothing to change
        key = prompt_hash(merged.prompt, merged.art_style, merged.model, merged.size)
        described = await image_rows.set_description(cur, image_id, merged, key)
        await cache_rows.remember_upload(cur, key, image_id, merged.prompt, None)
    return described


def _merged_description(record: ImageRecord, given: Description) -> Description:
    """What the record says, completed by what is given; a contradiction is a Conflict."""
    merged = {}
    for field in ("completed_sentence", "prompt", "art_style", "ai_service", "model", "size"):
        held, new = getattr(record, field), getattr(given, field)
        if held is not None and new is not None and held != new:
            raise Conflict(f"image {record.image_id} has {field} {held!r}", field=field)
        merged[field] = held if new is None else new
    return Description(**merged)
