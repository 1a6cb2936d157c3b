"""Use cases for images: store an upload, list a round or a game, find one player's picture."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import aiopg

from image_sidecar import db
from image_sidecar.db import cache as cache_rows
from image_sidecar.db import images as image_rows
from image_sidecar.errors import Conflict, NotFound
from image_sidecar.imagetypes import sniff
from image_sidecar.models import ImageMetadata, ImageRecord, RoundRef, StoredBytes
from image_sidecar.prompts import prompt_hash
from image_sidecar.storage.base import BlobStore


class ImageNotFound(NotFound):
    pass


def image_key(game_code: str, round_number: int, player_id: UUID, extension: str) -> str:
    """The seed's layout; every part is validated before it gets here."""
    return f"game-{game_code}/round-{round_number}/player-{player_id}.{extension}"


class StagedBlobs:
    """Blobs written inside a database transaction, removed again if it does not commit."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self.keys: list[str] = []

    async def put(self, key: str, data: bytes, sha256: str) -> None:
        await self._store.put(key, data, sha256)
        self.keys.append(key)

    async def link(self, source_key: str, target_key: str) -> None:
        await self._store.link(source_key, target_key)
        self.keys.append(target_key)


@asynccontextmanager
async def transaction_with_blobs(
    pool: aiopg.Pool, store: BlobStore
) -> AsyncIterator[tuple[aiopg.Cursor, StagedBlobs]]:
    """Rows and bytes together: the rows commit only after their bytes are written, and bytes
    whose rows did not commit are deleted. A crash in between leaves only orphan files, which
    the cleanup sweeps; never a row without its file.
    """
    staged = StagedBlobs(store)
    try:
        async with db.transaction(pool) as cur:
            yield cur, staged
    except BaseException:
        if staged.keys:
            await store.delete_many(staged.keys)
        raise


async def store_image(
    pool: aiopg.Pool,
    store: BlobStore,
    meta: ImageMetadata,
    data: bytes,
    *,
    default_retention_days: int,
    claim_token: UUID | None = None,
) -> tuple[ImageRecord, bool]:
    """Save the bytes and the record together; (record, created). A retry returns the original.

    A concurrent upload of the same submission or the same path waits on the uncommitted row,
    then finds the conflict, so it never writes the bytes a second time.
    """
    image_type = sniff(data)
    existing = await find_submission(pool, meta.submission_id)
    if existing is not None:
        return existing, False
    sha256 = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    blob = StoredBytes(
        storage_key=image_key(
            meta.game_code, meta.round_number, meta.player_id, image_type.extension
        ),
        content_type=image_type.content_type,
        size_bytes=len(data),
        sha256=sha256,
    )
    key = prompt_hash(meta.prompt, meta.art_style)
    async with transaction_with_blobs(pool, store) as (cur, staged):
        record = await insert_record(cur, meta, blob, key, default_retention_days)
        if record is not None:
            await cache_rows.remember_upload(cur, key, record.image_id, claim_token)
            await staged.put(blob.storage_key, data, sha256)
    if record is not None:
        return record, True
    return await existing_submission_or_conflict(pool, meta)


async def insert_record(
    cur: aiopg.Cursor,
    meta: ImageMetadata,
    blob: StoredBytes,
    prompt_hash: str,
    default_retention_days: int,
    reused_from: UUID | None = None,
) -> ImageRecord | None:
    """A new record with its own expiry; None when its submission or path is taken."""
    return await image_rows.insert_image(
        cur,
        image_id=uuid.uuid4(),
        meta=meta,
        blob=blob,
        prompt_hash=prompt_hash,
        retention_days=meta.retention_days or default_retention_days,
        reused_from=reused_from,
    )


async def existing_submission_or_conflict(
    pool: aiopg.Pool, meta: ImageMetadata
) -> tuple[ImageRecord, bool]:
    """After an insert found its submission or path taken: the retry's answer, or 409."""
    existing = await find_submission(pool, meta.submission_id)
    if existing is not None:
        return existing, False
    raise Conflict(
        f"player {meta.player_id} already has an image in game {meta.game_code} "
        f"round {meta.round_number}"
    )


async def find_submission(pool: aiopg.Pool, submission_id: UUID) -> ImageRecord | None:
    async with db.cursor(pool) as cur:
        return await image_rows.get_by_submission(cur, submission_id)


async def list_round(pool: aiopg.Pool, game_code: str, round_ref: RoundRef) -> list[ImageRecord]:
    async with db.cursor(pool) as cur:
        return await image_rows.list_round(cur, game_code, round_ref)


async def list_game(pool: aiopg.Pool, game_code: str) -> list[ImageRecord]:
    async with db.cursor(pool) as cur:
        return await image_rows.list_game(cur, game_code)


async def get_player_image(
    pool: aiopg.Pool, game_code: str, round_ref: RoundRef, player_id: UUID
) -> ImageRecord:
    async with db.cursor(pool) as cur:
        record = await image_rows.get_player_image(cur, game_code, round_ref, player_id)
    if record is None:
        raise ImageNotFound(
            f"no image for player {player_id} in game {game_code} round {round_ref}"
        )
    return record
