"""Looking a prompt up (single-flight across replicas), reading and forgetting entries, claims.

Every AI call costs money. A lookup answers `hit` (reuse this image), `miss` (you hold the claim:
generate, then upload) or `pending` (someone else is generating it). Registering a hit writes an
image record: `prompt_cache.reuse`. Claims lapse after IMAGE_CACHE_CLAIM_SECONDS so a caller
that died never blocks a prompt for long.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import structlog

from image_sidecar import db
from image_sidecar.db import cache as cache_rows
from image_sidecar.db.notify import NotificationHub
from image_sidecar.errors import NotFound
from image_sidecar.models import CacheEntry, ImageRecord
from image_sidecar.prompt_cache.prompts import Prompt

log = structlog.get_logger(__name__)

# A long-poll holds a request open; 30 s stays under common proxy idle timeouts.
MAX_WAIT_MS = 30_000
# Pending callers that do not long-poll are told to come back within this bound.
MAX_RETRY_AFTER_MS = 2_000


class CacheEntryNotFound(NotFound):
    pass


@dataclass(frozen=True)
class LookupResult:
    status: Literal["hit", "miss", "pending"]
    prompt_hash: str
    image: ImageRecord | None = None
    claim_token: UUID | None = None
    retry_after_ms: int | None = None


async def _lookup_once(pool: db.Pool, key: str, claim_seconds: int) -> LookupResult:
    async with db.cursor(pool) as cur:
        entry = await cache_rows.live_entry(cur, key)
        if entry is not None:
            return LookupResult("hit", key, image=entry.image)
        token = uuid.uuid4()
        if await cache_rows.take_claim(cur, key, token, claim_seconds):
            # An upload may have landed between the two statements: then it is a hit after all.
            entry = await cache_rows.live_entry(cur, key)
            if entry is not None:
                await cache_rows.release_claim(cur, token)
                return LookupResult("hit", key, image=entry.image)
            return LookupResult("miss", key, claim_token=token)
        remaining_ms = await cache_rows.claim_remaining_ms(cur, key)
    return LookupResult(
        "pending", key, retry_after_ms=max(1, min(remaining_ms, MAX_RETRY_AFTER_MS))
    )


async def lookup(
    pool: db.Pool,
    hub: NotificationHub,
    prompt: Prompt,
    *,
    claim_seconds: int,
    wait_ms: int = 0,
) -> LookupResult:
    """Hit, miss (with a claim) or pending; with `wait_ms`, wait for a pending prompt's image.

    A process shutting down stops waiting: the caller gets `pending` with `retry_after_ms` and
    asks again (another replica, or this one restarted).
    """
    key = prompt.hash
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_ms / 1000
    # Subscribe before the first check, so an upload finishing right after it still wakes us.
    with hub.subscribe(key) as announced:
        while True:
            announced.clear()
            result = await _lookup_once(pool, key, claim_seconds)
            remaining = deadline - loop.time()
            if result.status != "pending" or remaining <= 0 or hub.closing:
                return result
            # Wake on the upload's notification, or when the claim lapses and can be taken over.
            claim_lapse = (result.retry_after_ms or 0) / 1000
            timeout = min(remaining, max(claim_lapse, 0.01), hub.recheck_seconds)
            try:
                async with asyncio.timeout(timeout):
                    await announced.wait()
            except TimeoutError:
                pass


async def get_entry(pool: db.Pool, key: str) -> CacheEntry:
    async with db.cursor(pool) as cur:
        entry = await cache_rows.live_entry(cur, key)
    if entry is None:
        raise CacheEntryNotFound(f"no cached image for prompt hash {key}")
    return entry


async def forget(pool: db.Pool, key: str) -> None:
    """Forget a prompt's picture (a moderator's call): the next identical prompt is generated
    afresh; existing images stay."""
    async with db.cursor(pool) as cur:
        if not await cache_rows.forget(cur, key):
            raise CacheEntryNotFound(f"no cached image for prompt hash {key}")


class ClaimNotFound(NotFound):
    """No live claim has this token: never issued, already completed or released, or lapsed."""


async def release(pool: db.Pool, claim_token: UUID, reason: str | None = None) -> str:
    """The claim's holder gives it back (its AI call failed): the next caller, or exactly one
    waiting lookup, takes it over at once instead of after IMAGE_CACHE_CLAIM_SECONDS. Returns
    the prompt hash that was claimed; ClaimNotFound for an unknown, spent or lapsed token."""
    async with db.transaction(pool) as cur:
        key = await cache_rows.release_claim(cur, claim_token)
        if key is None:
            raise ClaimNotFound(f"no live claim has the token {claim_token}")
        await cache_rows.announce(cur, key)  # waiting lookups re-check and one takes it
    log.info("claim_released", prompt_hash=key, reason=reason)
    return key
