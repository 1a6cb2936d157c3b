"""Use cases for images: store an upload, list a round or a game, find one player's picture."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from uuid import UUID

import aiopg

from image_sidecar import db
from image_sidecar.db import images as image_rows
from image_sidecar.errors import Conflict, NotFound
from image_sidecar.imagetypes import sniff
from image_sidecar.models import ImageMetadata, ImageRecord, RoundRef, StoredBytes
from image_sidecar.prompt_cache import prompt_hash
from image_sidecar.storage.base import BlobStore


class ImageNotFound(NotFound):
    pass


def image_key(game_code: str, round_number: int, player_id: UUID, extension: str) -> str:
    """The seed's layout; every part is validated before it gets here."""
    return f"game-{game_code}/round-{round_number}/player-{player_id}.{extension}"


async def store_image(
    pool: aiopg.Pool,
    store: BlobStore,
    meta: ImageMetadata,
    data: bytes,
    *,
    default_retention_days: int,
) -> tuple[ImageRecord, bool]:
    """Save the bytes and the record together; (record, created). A retry returns the original."""
    image_type = sniff(data)
    existing = await _find_submission(pool, meta.submission_id)
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
    return await insert_with_blob(
        pool,
        store,
        meta,
        blob,
        write_blob=lambda: store.put(blob.storage_key, data, sha256),
        default_retention_days=default_retention_days,
    )


async def insert_with_blob(
    pool: aiopg.Pool,
    store: BlobStore,
    meta: ImageMetadata,
    blob: StoredBytes,
    *,
    write_blob: Callable[[], Awaitable[None]],
    default_retention_days: int,
    reused_from: UUID | None = None,
) -> tuple[ImageRecord, bool]:
    """Insert the row, write the blob, commit: the row is visible only once its bytes are.

    A concurrent upload of the same submission or the same path waits on the uncommitted row,
    then finds the conflict, so it never writes the bytes a second time.
    """
    blob_written = False
    try:
        async with db.transaction(pool) as cur:
            record = await image_rows.insert_image(
                cur,
                image_id=uuid.uuid4(),
                meta=meta,
                blob=blob,
                prompt_hash=prompt_hash(meta.prompt, meta.art_style),
                retention_days=meta.retention_days or default_retention_days,
                reused_from=reused_from,
            )
            if record is not None:
                await write_blob()
                blob_written = True
    except BaseException:
        if blob_written:  # the commit failed after the bytes landed
            await store.delete_many([blob.storage_key])
        raise
    if record is not None:
        return record, True
    existing = await _find_submission(pool, meta.submission_id)
    if existing is not None:
        return existing, False
    raise Conflict(
        f"player {meta.player_id} already has an image in game {meta.game_code} "
        f"round {meta.round_number}"
    )


async def _find_submission(pool: aiopg.Pool, submission_id: UUID) -> ImageRecord | None:
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
