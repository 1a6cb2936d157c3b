"""Counting hits: every reuse of a cached picture is an AI call not paid for."""

from __future__ import annotations

from decimal import Decimal

from image_sidecar import db
from image_sidecar.db import cache as cache_rows
from image_sidecar.models import CacheEntry, ImageRecord
from image_sidecar.prompt_cache.costs import GenerationCosts
from image_sidecar.prompt_cache.lookup import CacheEntryNotFound


async def count_reuse(
    cur: db.Cursor, key: str, cached: ImageRecord, costs: GenerationCosts
) -> Decimal:
    """Inside a hit's transaction: count the hit, the reuse and the AI call it saved (what the
    cached picture cost, else the service's configured price). Returns the saving."""
    saved = cached.generation_cost_usd
    if saved is None:
        saved = costs.for_service(cached.ai_service)
    if not await cache_rows.count_reuse(cur, key, cached.ai_service, saved):
        raise CacheEntryNotFound(f"no cached image for prompt hash {key}")
    return saved


async def count_hit(pool: db.Pool, key: str, costs: GenerationCosts) -> tuple[CacheEntry, Decimal]:
    """A hit that registers no record (the story's recordCacheHit): the game server shows the
    cached picture as it is, and the hit and its saving still count. Returns the entry as
    counted and the saving."""
    async with db.transaction(pool) as cur:
        entry = await cache_rows.live_entry(cur, key)
        if entry is None:
            raise CacheEntryNotFound(f"no cached image for prompt hash {key}")
        saved = await count_reuse(cur, key, entry.image, costs)
        counted = await cache_rows.live_entry(cur, key)
    assert counted is not None  # the row is locked by the count
    return counted, saved
