"""A hit on the prompt cache as the source of a record: the cached picture becomes this
player's too. `lookup_and_register` is the lookup with `register`: it looks again when the
entry goes between the lookup and the registration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from image_sidecar import db
from image_sidecar.db import cache as cache_rows
from image_sidecar.db.notify import NotificationHub
from image_sidecar.errors import InvalidField
from image_sidecar.images.formats import BY_CONTENT_TYPE
from image_sidecar.images.keys import image_key, made_links, renditions_beside
from image_sidecar.images.writer import PlannedRecord, Registration, StagedBlobs, register
from image_sidecar.models import ImageMetadata, ImageRecord, StoredBytes
from image_sidecar.prompt_cache.costs import GenerationCosts
from image_sidecar.prompt_cache.hits import count_reuse
from image_sidecar.prompt_cache.lookup import CacheEntryNotFound, LookupResult, lookup
from image_sidecar.prompt_cache.prompts import Prompt, canonical_text, prompt_hash
from image_sidecar.storage.base import BlobNotFound, BlobStore, NewBlob

# A lookup with `register` looks again if the entry vanishes before the registration.
REGISTER_ATTEMPTS = 2


class CacheReuse:
    """A hit on the prompt cache: the cached image becomes this player's too, sharing its bytes
    (a hard link, a server-side copy), and the hit and the AI call it saved are recorded.

    The record is the cached picture: it takes its prompt, art style, AI service and generation
    parameters (the caller may omit them). What the caller does say must hash to the entry's
    key, else the record would claim a sentence its picture was not made from.
    """

    def __init__(self, prompt_hash: str, costs: GenerationCosts) -> None:
        self.prompt_hash = prompt_hash
        self.costs = costs

    async def prepare(self, meta: ImageMetadata) -> list[NewBlob]:
        return []  # the cached picture's bytes are linked, not written

    async def plan(self, cur: db.Cursor, meta: ImageMetadata) -> PlannedRecord:
        entry = await cache_rows.live_entry(cur, self.prompt_hash)
        if entry is None:
            raise CacheEntryNotFound(f"no cached image for prompt hash {self.prompt_hash}")
        source = entry.image
        _check_matches_entry(meta, source, self.prompt_hash)
        extension = BY_CONTENT_TYPE[source.content_type].extension
        blob = StoredBytes(
            image_path=image_key(meta, extension),
            content_type=source.content_type,
            size_bytes=source.size_bytes,
            sha256=source.sha256,
            width=source.width,
            height=source.height,
            placeholder=source.placeholder,
        )
        as_cached = replace(
            meta,
            completed_sentence=meta.completed_sentence or source.completed_sentence,
            prompt=source.prompt,
            art_style=source.art_style,
            ai_service=source.ai_service,
            model=source.model,
            size=source.size,
        )
        return PlannedRecord(
            as_cached,
            blob,
            self.prompt_hash,
            reused_from=source,
            renditions=renditions_beside(blob.image_path, source.renditions),
        )

    async def write(
        self, cur: db.Cursor, staged: StagedBlobs, record: ImageRecord, plan: PlannedRecord
    ) -> Decimal:
        source = plan.reused_from
        assert source is not None  # plan() always names the cached image
        try:
            original = (source.image_path, plan.blob.image_path, plan.blob.size_bytes)
            await staged.link_many([original, *made_links(source.renditions, plan.renditions)])
        except BlobNotFound:
            raise CacheEntryNotFound(
                f"the image cached for prompt hash {self.prompt_hash} is gone"
            ) from None
        return await count_reuse(cur, self.prompt_hash, source, self.costs)


def _check_matches_entry(meta: ImageMetadata, cached: ImageRecord, key: str) -> None:
    """The caller's text (when it gives one: the entry knows its own), hashed with the cached
    picture's style and parameters, is the key; and the style and parameters it names (if any)
    are the cached picture's."""
    text_field = "completed_sentence" if meta.prompt == meta.completed_sentence else "prompt"
    if meta.prompt is not None and (
        prompt_hash(meta.prompt, cached.art_style, cached.model, cached.size) != key
    ):
        raise InvalidField(
            text_field, f"does not match the prompt cached under {key} ({cached.prompt!r})"
        )
    for field, given, held in (
        ("art_style", meta.art_style, cached.art_style),
        ("model", meta.model, cached.model),
        ("size", meta.size, cached.size),
    ):
        if given is not None and canonical_text(given) != canonical_text(held or ""):
            raise InvalidField(field, f"differs from the cached picture's ({held!r})")


async def register_hit(
    pool: db.Pool,
    store: BlobStore,
    key: str,
    meta: ImageMetadata,
    costs: GenerationCosts,
    *,
    default_retention_days: int,
    public_base_url: str,
) -> Registration:
    """Register the image cached under `key` as this player's (a hit); counted once, also
    when retried with the same submission_id."""
    return await register(
        pool,
        store,
        meta,
        CacheReuse(key, costs),
        default_retention_days=default_retention_days,
        public_base_url=public_base_url,
    )


@dataclass(frozen=True)
class RegisteredLookup:
    """A lookup with `register`: the last lookup's answer, the record a hit registered, and
    every lookup's status (a vanished entry is looked up again), for the metrics."""

    result: LookupResult
    registration: Registration | None
    statuses: tuple[str, ...]


async def lookup_and_register(
    pool: db.Pool,
    store: BlobStore,
    hub: NotificationHub,
    prompt: Prompt,
    meta: ImageMetadata | None,
    costs: GenerationCosts,
    *,
    claim_seconds: int,
    wait_ms: int,
    default_retention_days: int,
    public_base_url: str,
) -> RegisteredLookup:
    """Look `prompt` up; on a hit with `meta`, register the cached picture as this player's.
    When the entry goes between the two (a takedown, an expiry), look again, once."""
    statuses: list[str] = []
    for attempt in range(1, REGISTER_ATTEMPTS + 1):
        result = await lookup(pool, hub, prompt, claim_seconds=claim_seconds, wait_ms=wait_ms)
        statuses.append(result.status)
        if meta is None or result.status != "hit":
            return RegisteredLookup(result, None, tuple(statuses))
        try:
            registration = await register_hit(
                pool,
                store,
                result.prompt_hash,
                meta,
                costs,
                default_retention_days=default_retention_days,
                public_base_url=public_base_url,
            )
        except CacheEntryNotFound:
            if attempt == REGISTER_ATTEMPTS:
                raise
            continue
        return RegisteredLookup(result, registration, tuple(statuses))
    raise AssertionError("unreachable: the last attempt returns or raises")
