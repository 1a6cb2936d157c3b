"""The one writer of image records: new bytes from an upload and a cache hit's reuse alike.

`register` opens one transaction, asks its source for the bytes' facts, inserts the record and
lets the source write what goes with it (the bytes, the prompt's cache entry, a hit and its
saving). Blobs are staged: they are written before the commit and deleted again when the
transaction does not commit, so a failure at any point leaves neither a row without its file
nor, after the orphan sweep, a file without its row. A later "and also write these derived
files" belongs in a source's `write`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from image_sidecar import db
from image_sidecar.config import GenerationCosts
from image_sidecar.db import cache as cache_rows
from image_sidecar.db import images as image_rows
from image_sidecar.db import moderation as moderation_rows
from image_sidecar.db import stats as stats_rows
from image_sidecar.db.images import KnownRound
from image_sidecar.errors import BlockedContent, Conflict, InvalidField, SidecarError
from image_sidecar.images import ImageNotFound
from image_sidecar.imagetypes import BY_CONTENT_TYPE
from image_sidecar.imaging import ImageProcessor, InspectedImage, Rendition
from image_sidecar.models import (
    Description,
    ImageMetadata,
    ImageRecord,
    StoredBytes,
    StoredRendition,
)
from image_sidecar.prompt_cache import CacheEntryNotFound, count_reuse
from image_sidecar.prompts import canonical_text, prompt_hash
from image_sidecar.storage.base import BlobNotFound, BlobRef, BlobStore, NewBlob


def image_key(meta: ImageMetadata, extension: str) -> str:
    """The seed's three levels, with the game directory telling apart games that share a room
    code: `game-{CODE}-{game_id}/round-{n}/player-{player_id}.{ext}`. Every part is validated
    before it gets here. (Keys issued before game ids were in the path stay as they are.)"""
    return (
        f"game-{meta.game_code}-{meta.game_id}/round-{meta.round_number}/"
        f"player-{meta.player_id}.{extension}"
    )


def rendition_key(image_key: str, name: str, image_format: str) -> str:
    """Beside its original: `player-{id}.png` has `player-{id}.thumb.webp`, `...large.avif`."""
    return f"{image_key.rpartition('.')[0]}.{name}.{image_format}"


def renditions_beside(
    key: str, renditions: Iterable[StoredRendition]
) -> tuple[StoredRendition, ...]:
    """The same renditions, stored beside the image under `key` (a reuse shares their bytes)."""
    return tuple(
        replace(rendition, image_path=rendition_key(key, rendition.name, rendition.format))
        for rendition in renditions
    )


def stored_renditions(key: str, rendered: Iterable[Rendition]) -> tuple[StoredRendition, ...]:
    """Where freshly made renditions of the image under `key` are stored, and their facts."""
    return tuple(
        StoredRendition(
            name=made.name,
            format=made.format,
            image_path=rendition_key(key, made.name, made.format),
            content_type=made.content_type,
            width=made.width,
            height=made.height,
            size_bytes=len(made.data),
        )
        for made in rendered
    )


def rendition_blobs(
    stored: tuple[StoredRendition, ...], rendered: tuple[Rendition, ...]
) -> list[tuple[StoredBytes, bytes]]:
    """Freshly made renditions, as the bytes to write where `stored_renditions` put them."""
    return [
        (
            StoredBytes(where.image_path, where.content_type, where.size_bytes, made.sha256),
            made.data,
        )
        for where, made in zip(stored, rendered, strict=True)
    ]


async def link_renditions(
    staged: StagedBlobs, shared: tuple[StoredRendition, ...], own: tuple[StoredRendition, ...]
) -> None:
    """Another image's renditions under this image's keys, sharing their bytes."""
    await staged.link_many(
        [(s.image_path, t.image_path, t.size_bytes) for s, t in zip(shared, own, strict=True)]
    )


class StagedBlobs:
    """Blobs written inside a database transaction, removed again if it does not commit."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self.written: list[BlobRef] = []

    async def put_many(self, blobs: list[tuple[StoredBytes, bytes]]) -> None:
        """(facts, bytes) each, in one trip to the store: counted as written before any is
        written, so that a failure part-way leaves nothing the rollback does not delete."""
        self.written.extend(BlobRef(blob.image_path, blob.size_bytes) for blob, _ in blobs)
        await self._store.put_many(
            [NewBlob(b.image_path, data, b.content_type, b.sha256) for b, data in blobs]
        )

    async def link_many(self, links: list[tuple[str, str, int]]) -> None:
        """(source key, target key, size) each: counted as written before any is made, so that a
        failure part-way leaves nothing the rollback does not delete."""
        self.written.extend(BlobRef(target, size) for _, target, size in links)
        await self._store.link_many([(source, target) for source, target, _ in links])


@asynccontextmanager
async def transaction_with_blobs(
    pool: db.Pool, store: BlobStore
) -> AsyncIterator[tuple[db.Cursor, StagedBlobs]]:
    """Rows and bytes together: the rows commit only after their bytes are written, and bytes
    whose rows did not commit are deleted. A crash in between leaves only orphan files, which
    the cleanup sweeps; never a row without its file.
    """
    staged = StagedBlobs(store)
    try:
        async with db.transaction(pool) as cur:
            yield cur, staged
    except BaseException:
        if staged.written:
            await store.delete_many(staged.written)
        raise


@dataclass(frozen=True)
class PlannedRecord:
    """What a source knows before the insert: the metadata to store (a reuse takes the cached
    picture's), the bytes' facts, the prompt and the origin."""

    meta: ImageMetadata
    blob: StoredBytes
    prompt_hash: str | None  # None until the picture is described
    reused_from: ImageRecord | None = None
    renditions: tuple[StoredRendition, ...] = ()


class RecordSource(Protocol):
    """Where a record's bytes come from: an upload (NewImage) or a cache hit (CacheReuse)."""

    async def prepare(self) -> None:
        """Work that needs no database connection (sniffing, hashing); may refuse the input."""

    async def plan(self, cur: db.Cursor, meta: ImageMetadata) -> PlannedRecord:
        """Inside the transaction, before the insert."""

    async def write(
        self, cur: db.Cursor, staged: StagedBlobs, record: ImageRecord, plan: PlannedRecord
    ) -> Decimal:
        """Inside the transaction, after the insert: the bytes and the source's own rows. Returns
        the generation cost this record saved (0 for new bytes)."""


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
        self._image: InspectedImage | None = None

    async def prepare(self) -> None:
        self._image = await self.processor.inspect(self.data)

    async def plan(self, cur: db.Cursor, meta: ImageMetadata) -> PlannedRecord:
        image = self._image
        assert image is not None  # register() prepares before it plans
        if await moderation_rows.is_blocked(cur, image.sha256):
            raise BlockedContent("these image bytes were taken down and cannot be stored again")
        blob = StoredBytes(
            image_path=image_key(meta, image.image_type.extension),
            content_type=image.image_type.content_type,
            size_bytes=len(self.data),
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            placeholder=image.placeholder,
        )
        renditions = stored_renditions(blob.image_path, image.renditions)
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
        assert self._image is not None
        await staged.put_many(
            [(plan.blob, self.data), *rendition_blobs(plan.renditions, self._image.renditions)]
        )
        cost = record.generation_cost_usd
        await stats_rows.record_usage(
            cur,
            record.ai_service,
            generated=1,
            bytes_stored=record.size_bytes,
            generation_cost_usd=self.costs.for_service(record.ai_service) if cost is None else cost,
        )
        return Decimal(0)


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

    async def prepare(self) -> None:
        pass

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
            await staged.link_many(
                [(source.image_path, plan.blob.image_path, plan.blob.size_bytes)]
                + [
                    (shared.image_path, own.image_path, own.size_bytes)
                    for shared, own in zip(source.renditions, plan.renditions, strict=True)
                ]
            )
        except BlobNotFound:
            raise CacheEntryNotFound(
                f"the image cached for prompt hash {self.prompt_hash} is gone"
            ) from None
        return await count_reuse(cur, self.prompt_hash, source, record.image_id, self.costs)


def _check_matches_entry(meta: ImageMetadata, cached: ImageRecord, key: str) -> None:
    """The caller's text, hashed with the cached picture's style and parameters, is the key;
    and the style and parameters it names (if any) are the cached picture's."""
    if meta.prompt is None:
        raise InvalidField("completed_sentence", "is required for a cache hit")
    text_field = "completed_sentence" if meta.prompt == meta.completed_sentence else "prompt"
    if prompt_hash(meta.prompt, cached.art_style, cached.model, cached.size) != key:
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


@dataclass(frozen=True)
class Registration:
    record: ImageRecord
    created: bool
    cost_saved_usd: Decimal = Decimal(0)


class _SubmissionOrSlotTaken(Exception):
    """The insert found its submission (a retry) or its player's slot taken: roll back."""


async def register(
    pool: db.Pool,
    store: BlobStore,
    meta: ImageMetadata,
    source: RecordSource,
    *,
    default_retention_days: int,
    public_base_url: str,
) -> Registration:
    """Write one image record and what goes with it, all or nothing.

    A retry with the same submission_id returns the first record (created=False) and changes
    nothing; a concurrent retry waits on the uncommitted row, so bytes are never written twice.
    A second picture for a player's round, or identifiers that contradict what the game holds,
    are a Conflict naming the field.
    """
    await source.prepare()
    try:
        async with transaction_with_blobs(pool, store) as (cur, staged):
            _check_game_round(meta, await image_rows.register_game_round(cur, meta))
            plan = await source.plan(cur, meta)
            record = await image_rows.insert_image(
                cur,
                meta=plan.meta,
                blob=plan.blob,
                image_url=f"{public_base_url}/{plan.blob.image_path}",
                prompt_hash=plan.prompt_hash,
                retention_days=meta.retention_days or default_retention_days,
                reused_from=plan.reused_from,
            )
            if record is None:
                raise _SubmissionOrSlotTaken
            await image_rows.insert_renditions(cur, record.image_id, plan.renditions)
            record = replace(record, renditions=plan.renditions)
            saved = await source.write(cur, staged, record, plan)
    except (_SubmissionOrSlotTaken, SidecarError) as exc:
        # Whatever went wrong, a submission that already exists is a retry: answer with it.
        existing = await find_submission(pool, meta.submission_id)
        if existing is not None:
            return Registration(existing, created=False)
        if isinstance(exc, _SubmissionOrSlotTaken):
            raise Conflict(
                f"player {meta.player_id} already has a picture in round {meta.round_number} "
                f"of game {meta.game_id} (submission ids differ)",
                field="player_id",
            ) from None
        raise
    return Registration(record, created=True, cost_saved_usd=saved)


def _check_game_round(meta: ImageMetadata, known: list[KnownRound]) -> None:
    """A game_id always has one code; within a game, round_id and round_number pair up."""
    for held in known:
        if held.game_code != meta.game_code:
            raise Conflict(
                f"game {meta.game_id} is game {held.game_code}, not {meta.game_code}",
                field="game_code",
            )
        if held.round_id is not None and held.round_id != meta.round_id:
            raise Conflict(
                f"round {meta.round_number} of game {meta.game_id} is round {held.round_id}",
                field="round_id",
            )
        if held.round_number is not None and held.round_number != meta.round_number:
            raise Conflict(
                f"round {meta.round_id} of game {meta.game_id} is round number {held.round_number}",
                field="round_number",
            )


async def find_submission(pool: db.Pool, submission_id: UUID) -> ImageRecord | None:
    async with db.cursor(pool) as cur:
        return await image_rows.get_by_submission(cur, submission_id)


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
