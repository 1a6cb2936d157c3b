"""The one writer of image records: new bytes from an upload and a cache hit's reuse alike.

`register` opens one transaction, asks its source for the bytes' facts, inserts the record and
lets the source write what goes with it (the bytes, the prompt's cache entry, a hit and its
saving). Blobs are staged: they are written before the commit and deleted again when the
transaction does not commit, so a failure at any point leaves neither a row without its file
nor, after the orphan sweep, a file without its row: the places a write will use are journaled
(write_intents) before any byte appears under a key and the entry goes with the commit, so the
nightly sweep looks only at what a crash may have left. A later "and also write these derived
files" belongs in a source's `write`. The sources are `images.upload.NewImage` and
`prompt_cache.reuse.CacheReuse`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from image_sidecar import db
from image_sidecar.db import images as image_rows
from image_sidecar.db import intents as intent_rows
from image_sidecar.db.images import KnownRound
from image_sidecar.errors import Conflict, SidecarError
from image_sidecar.images.keys import image_prefix
from image_sidecar.models import ImageMetadata, ImageRecord, StoredBytes, StoredRendition
from image_sidecar.storage.base import BlobRef, BlobStore, NewBlob, StagedBlob


class StagedBlobs:
    """Blobs written for a database transaction, removed again if it does not commit.

    New bytes are staged (written and synced where no reader sees them) before the transaction
    opens, so that it holds its pooled connection only for its statements and the publishing
    (renames and one directory sync); links and late puts are made inside it.
    """

    def __init__(self, store: BlobStore, pending: list[StagedBlob] | None = None) -> None:
        self._store = store
        self.written: list[BlobRef] = []
        self.pending = pending or []

    async def publish_pending(self) -> None:
        """The staged bytes, visible under their keys: counted as written before any is, so
        that a failure part-way leaves nothing the rollback does not delete."""
        staged, self.pending = self.pending, []
        self.written.extend(BlobRef(item.blob.key, len(item.blob.data)) for item in staged)
        await self._store.publish_many(staged)

    async def put_many(self, blobs: list[NewBlob]) -> None:
        """In one trip to the store: counted as written before any is written, so that a
        failure part-way leaves nothing the rollback does not delete."""
        self.written.extend(BlobRef(blob.key, len(blob.data)) for blob in blobs)
        await self._store.put_many(blobs)

    async def link_many(self, links: list[tuple[str, str, int]]) -> None:
        """(source key, target key, size) each: counted as written before any is made, so that a
        failure part-way leaves nothing the rollback does not delete."""
        self.written.extend(BlobRef(target, size) for _, target, size in links)
        await self._store.link_many([(source, target) for source, target, _ in links])


@asynccontextmanager
async def transaction_with_blobs(
    pool: db.Pool,
    store: BlobStore,
    places: list[str],
    pending: list[StagedBlob] | None = None,
) -> AsyncIterator[tuple[db.Cursor, StagedBlobs]]:
    """Rows and bytes together: the rows commit only after their bytes are published, and
    bytes whose rows did not commit are deleted (or, never published, discarded). `places` are
    the key prefixes (`images.keys.key_prefix`) of every key the block may write: journaled
    first, forgotten with the commit or once the bytes of a failed write are deleted. A crash
    in between leaves only files the journal names and temp files, which the cleanup sweeps;
    never a row without its file.
    """
    staged = StagedBlobs(store, pending)
    intents: list[int] = []
    try:
        async with db.cursor(pool) as cur:
            intents = await intent_rows.record(cur, places)
        async with db.transaction(pool) as cur:
            yield cur, staged
            await intent_rows.clear(cur, intents)
    except BaseException:
        if staged.pending:
            await store.discard_many(staged.pending)
        if staged.written:
            deleted = await store.delete_many(staged.written)
            if deleted.failed:
                raise  # the journal keeps the places: the next cleanup deletes what is left
        if intents:
            with contextlib.suppress(SidecarError):  # if not now, the next cleanup does
                async with db.cursor(pool) as cur:
                    await intent_rows.clear(cur, intents)
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

    async def prepare(self, meta: ImageMetadata) -> list[NewBlob]:
        """Work that needs no database connection (decoding, hashing); may refuse the input.
        Returns the new bytes to stage before the transaction (`write` publishes them)."""

    async def plan(self, cur: db.Cursor, meta: ImageMetadata) -> PlannedRecord:
        """Inside the transaction, before the insert."""

    async def write(
        self, cur: db.Cursor, staged: StagedBlobs, record: ImageRecord, plan: PlannedRecord
    ) -> Decimal:
        """Inside the transaction, after the insert: the bytes and the source's own rows. Returns
        the generation cost this record saved (0 for new bytes)."""


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
    new_blobs = await source.prepare(meta)
    pending = await store.stage_many(new_blobs) if new_blobs else []
    places = [image_prefix(meta)]
    try:
        async with transaction_with_blobs(pool, store, places, pending) as (cur, staged):
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
