"""SQL for generated_images."""

from __future__ import annotations

from uuid import UUID

import aiopg

from image_sidecar.models import ImageMetadata, ImageRecord, RoundRef, StoredBytes

COLUMNS = (
    "image_id, submission_id, game_id, game_code, round_id, round_number, player_id, "
    "completed_sentence, prompt, art_style, ai_service, storage_key, content_type, size_bytes, "
    "sha256, prompt_hash, generation_cost_usd, reused_from, created_at, expires_at"
)


def record_from_row(row: dict) -> ImageRecord:
    return ImageRecord(**row)


async def insert_image(
    cur: aiopg.Cursor,
    *,
    image_id: UUID,
    meta: ImageMetadata,
    blob: StoredBytes,
    prompt_hash: str,
    retention_days: int,
    reused_from: UUID | None = None,
) -> ImageRecord | None:
    """Insert a record; None when its submission or its storage key is already taken."""
    await cur.execute(
        f"""
        INSERT INTO generated_images (
            image_id, submission_id, game_id, game_code, round_id, round_number, player_id,
            completed_sentence, prompt, art_style, ai_service, storage_key, content_type,
            size_bytes, sha256, prompt_hash, generation_cost_usd, reused_from, expires_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                now() + make_interval(days => %s))
        ON CONFLICT DO NOTHING
        RETURNING {COLUMNS}
        """,
        (
            image_id,
            meta.submission_id,
            meta.game_id,
            meta.game_code,
            meta.round_id,
            meta.round_number,
            meta.player_id,
            meta.completed_sentence,
            meta.prompt,
            meta.art_style,
            meta.ai_service,
            blob.storage_key,
            blob.content_type,
            blob.size_bytes,
            blob.sha256,
            prompt_hash,
            meta.generation_cost_usd,
            reused_from,
            retention_days,
        ),
    )
    row = await cur.fetchone()
    return record_from_row(row) if row else None


async def get_by_submission(cur: aiopg.Cursor, submission_id: UUID) -> ImageRecord | None:
    await cur.execute(
        f"SELECT {COLUMNS} FROM generated_images WHERE submission_id = %s", (submission_id,)
    )
    row = await cur.fetchone()
    return record_from_row(row) if row else None


def _round_condition(round_ref: RoundRef) -> str:
    return "round_id = %s" if isinstance(round_ref, UUID) else "round_number = %s"


async def list_round(cur: aiopg.Cursor, game_code: str, round_ref: RoundRef) -> list[ImageRecord]:
    await cur.execute(
        f"""
        SELECT {COLUMNS} FROM generated_images
        WHERE game_code = %s AND {_round_condition(round_ref)} AND expires_at > now()
        ORDER BY created_at, image_id
        """,
        (game_code, round_ref),
    )
    return [record_from_row(row) for row in await cur.fetchall()]


async def get_player_image(
    cur: aiopg.Cursor, game_code: str, round_ref: RoundRef, player_id: UUID
) -> ImageRecord | None:
    await cur.execute(
        f"""
        SELECT {COLUMNS} FROM generated_images
        WHERE game_code = %s AND {_round_condition(round_ref)} AND player_id = %s
          AND expires_at > now()
        """,
        (game_code, round_ref, player_id),
    )
    row = await cur.fetchone()
    return record_from_row(row) if row else None


async def list_game(cur: aiopg.Cursor, game_code: str) -> list[ImageRecord]:
    await cur.execute(
        f"""
        SELECT {COLUMNS} FROM generated_images
        WHERE game_code = %s AND expires_at > now()
        ORDER BY round_number, created_at, image_id
        """,
        (game_code,),
    )
    return [record_from_row(row) for row in await cur.fetchall()]
