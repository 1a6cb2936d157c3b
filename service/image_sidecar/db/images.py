"""SQL for generated_images, and the games and rounds they belong to."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import aiopg

from image_sidecar.models import (
    Description,
    ImageMetadata,
    ImageRecord,
    RoundRef,
    StoredBytes,
    StoredRendition,
)

COLUMNS = (
    "image_id, submission_id, game_id, game_code, round_id, round_number, player_id, "
    "completed_sentence, prompt, art_style, ai_service, image_path, content_type, size_bytes, "
    "sha256, prompt_hash, generation_cost_usd, reused_from, generated_at, created_at, expires_at, "
    "model, size, width, height, placeholder, player_name"
)


def renditions_column(alias: str) -> str:
    """A select-list item: the renditions of the image `alias` names, as a JSON list, in the
    order they are made (thumb then large; WebP then AVIF)."""
    return f"""(
        SELECT coalesce(json_agg(json_build_object(
            'name', r.name, 'format', r.format, 'image_path', r.image_path,
            'content_type', r.content_type, 'width', r.width, 'height', r.height,
            'size_bytes', r.size_bytes, 'sha256', r.sha256)
            ORDER BY r.name DESC, r.format DESC), '[]'::json)
        FROM image_renditions r WHERE r.image_id = {alias}.image_id) AS renditions"""


# A whole record: its columns, its renditions and whether the judge picked it.
RECORD = f"""{COLUMNS}, {renditions_column("generated_images")},
    EXISTS (SELECT 1 FROM round_winners w WHERE w.image_id = generated_images.image_id)
        AS is_winner"""

# The game a request means: the one it names, or the most recent game (by its first image)
# that still has live images under the code. Takes %(game_code)s and %(game_id)s.
GAME = """
    coalesce(
        (SELECT g.game_id FROM games g
         WHERE g.game_id = %(game_id)s::uuid AND g.game_code = %(game_code)s),
        (SELECT g.game_id FROM games g
         WHERE %(game_id)s::uuid IS NULL AND g.game_code = %(game_code)s
           AND EXISTS (SELECT 1 FROM generated_images live
                       WHERE live.game_id = g.game_id AND live.expires_at > now())
         ORDER BY g.created_at DESC LIMIT 1))
"""
LISTED = "expires_at > now() AND NOT superseded"


def record_from_row(row: dict) -> ImageRecord:
    renditions = tuple(StoredRendition(**item) for item in row.pop("renditions", None) or ())
    return ImageRecord(**row, renditions=renditions)


@dataclass(frozen=True)
class KnownRound:
    """What a game already holds for an upload's game and round: its code, and the round
    recorded under the upload's round_id or round_number (None when the round is new)."""

    game_code: str
    round_id: UUID | None
    round_number: int | None


async def register_game_round(cur: aiopg.Cursor, meta: ImageMetadata) -> list[KnownRound]:
    """Record the game and the round unless known, then read back what the game holds. One
    round trip; concurrent first uploads of one game wait on each other's insert, never fail."""
    await cur.execute(
        """
        INSERT INTO games (game_id, game_code) VALUES (%(game_id)s, %(game_code)s)
        ON CONFLICT DO NOTHING;
        INSERT INTO game_rounds (game_id, round_id, round_number)
        SELECT %(game_id)s, %(round_id)s, %(round_number)s
        FROM games WHERE game_id = %(game_id)s AND game_code = %(game_code)s
        ON CONFLICT DO NOTHING;
        SELECT g.game_code, r.round_id, r.round_number
        FROM games g LEFT JOIN game_rounds r ON r.game_id = g.game_id
            AND (r.round_id = %(round_id)s OR r.round_number = %(round_number)s)
        WHERE g.game_id = %(game_id)s
        """,
        {
            "game_id": meta.game_id,
            "game_code": meta.game_code,
            "round_id": meta.round_id,
            "round_number": meta.round_number,
        },
    )
    return [KnownRound(**row) for row in await cur.fetchall()]


async def insert_image(
    cur: aiopg.Cursor,
    *,
    meta: ImageMetadata,
    blob: StoredBytes,
    image_url: str,
    prompt_hash: str | None,
    retention_days: int,
    reused_from: ImageRecord | None = None,
) -> ImageRecord | None:
    """Insert a record; None when its submission or its player's slot in the round is taken."""
    await cur.execute(
        f"""
        INSERT INTO generated_images (
            submission_id, game_id, game_code, round_id, round_number, player_id,
            completed_sentence, prompt, art_style, ai_service, image_path, image_url,
            content_type, size_bytes, sha256, prompt_hash, generation_cost_usd, reused_from,
            model, size, width, height, placeholder, player_name, generated_at, expires_at,
            perceptual_hash)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                %s, %s, %s, %s, coalesce(%s, now()), now() + make_interval(days => %s),
                -- a reuse's bytes look as their first record's do
                coalesce(('x' || %s)::bit(256), (
                    SELECT perceptual_hash FROM generated_images
                    WHERE sha256 = %s AND perceptual_hash IS NOT NULL LIMIT 1)))
        ON CONFLICT DO NOTHING
        RETURNING {COLUMNS}
        """,
        (
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
            blob.image_path,
            image_url,
            blob.content_type,
            blob.size_bytes,
            blob.sha256,
            prompt_hash,
            meta.generation_cost_usd,
            reused_from.image_id if reused_from else None,
            meta.model,
            meta.size,
            blob.width,
            blob.height,
            blob.placeholder,
            meta.player_name,
            reused_from.generated_at if reused_from else None,
            retention_days,
            blob.perceptual_hash.hex() if blob.perceptual_hash else None,
            blob.sha256,
        ),
    )
    row = await cur.fetchone()
    return record_from_row(row) if row else None


async def insert_renditions(
    cur: aiopg.Cursor, image_id: UUID, renditions: tuple[StoredRendition, ...]
) -> None:
    if not renditions:
        return
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(renditions))
    params: list[object] = []
    for r in renditions:
        params += [image_id, r.name, r.format, r.image_path, r.content_type, r.width, r.height]
        params += [r.size_bytes, r.sha256]
    await cur.execute(
        f"""
        INSERT INTO image_renditions (
            image_id, name, format, image_path, content_type, width, height, size_bytes, sha256)
        VALUES {rows}
        """,
        params,
    )


async def get_by_submission(cur: aiopg.Cursor, submission_id: UUID) -> ImageRecord | None:
    await cur.execute(
        f"SELECT {RECORD} FROM generated_images WHERE submission_id = %s", (submission_id,)
    )
    row = await cur.fetchone()
    return record_from_row(row) if row else None


async def lock_live_image(cur: aiopg.Cursor, image_id: UUID) -> ImageRecord | None:
    await cur.execute(
        f"""
        SELECT {RECORD} FROM generated_images
        WHERE image_id = %s AND expires_at > now() FOR UPDATE
        """,
        (image_id,),
    )
    row = await cur.fetchone()
    return record_from_row(row) if row else None


async def set_description(
    cur: aiopg.Cursor, image_id: UUID, description: Description, prompt_hash: str
) -> ImageRecord:
    await cur.execute(
        f"""
        UPDATE generated_images
        SET completed_sentence = %s, prompt = %s, art_style = %s, ai_service = %s, model = %s,
            size = %s, prompt_hash = %s
        WHERE image_id = %s
        RETURNING {RECORD}
        """,
        (
            description.completed_sentence,
            description.prompt,
            description.art_style,
            description.ai_service,
            description.model,
            description.size,
            prompt_hash,
            image_id,
        ),
    )
    return record_from_row(await cur.fetchone())


def round_condition(round_ref: RoundRef) -> str:
    return "round_id = %(round)s" if isinstance(round_ref, UUID) else "round_number = %(round)s"


async def list_round(
    cur: aiopg.Cursor, game_code: str, round_ref: RoundRef, game_id: UUID | None
) -> list[ImageRecord]:
    await cur.execute(
        f"""
        SELECT {RECORD} FROM generated_images
        WHERE game_id = {GAME} AND {round_condition(round_ref)} AND {LISTED}
        ORDER BY created_at, image_id
        """,
        {"game_code": game_code, "game_id": game_id, "round": round_ref},
    )
    return [record_from_row(row) for row in await cur.fetchall()]


async def get_player_image(
    cur: aiopg.Cursor,
    game_code: str,
    round_ref: RoundRef,
    player_id: UUID,
    game_id: UUID | None,
) -> ImageRecord | None:
    await cur.execute(
        f"""
        SELECT {RECORD} FROM generated_images
        WHERE game_id = {GAME} AND {round_condition(round_ref)} AND player_id = %(player_id)s
          AND {LISTED}
        """,
        {"game_code": game_code, "game_id": game_id, "round": round_ref, "player_id": player_id},
    )
    row = await cur.fetchone()
    return record_from_row(row) if row else None


async def list_game(cur: aiopg.Cursor, game_code: str, game_id: UUID | None) -> list[ImageRecord]:
    await cur.execute(
        f"""
        SELECT {RECORD} FROM generated_images
        WHERE game_id = {GAME} AND {LISTED}
        ORDER BY round_number, created_at, image_id
        """,
        {"game_code": game_code, "game_id": game_id},
    )
    return [record_from_row(row) for row in await cur.fetchall()]


async def games_with_code(
    cur: aiopg.Cursor, game_code: str, player_id: UUID | None = None
) -> list[UUID]:
    """The games holding live images under `game_code` (of `player_id`, when given), newest
    first."""
    await cur.execute(
        """
        SELECT g.game_id FROM games g
        WHERE g.game_code = %(game_code)s
          AND EXISTS (SELECT 1 FROM generated_images gi
                      WHERE gi.game_id = g.game_id AND gi.expires_at > now()
                        AND (%(player_id)s::uuid IS NULL OR gi.player_id = %(player_id)s))
        ORDER BY g.created_at DESC
        """,
        {"game_code": game_code, "player_id": player_id},
    )
    return [row["game_id"] for row in await cur.fetchall()]


@dataclass(frozen=True)
class Unrendered:
    """A live image stored before renditions existed."""

    image_id: UUID
    image_path: str
    sha256: str


async def without_renditions(cur: aiopg.Cursor, after: UUID | None, limit: int) -> list[Unrendered]:
    """Live images with no rendition, in image_id order after `after` (a resumable walk).

    The renditions' side of the anti-join is bounded by `after` too (implied, but the planner
    does not infer it): without it, each batch read every rendition before its position, so a
    walk of a store whose images mostly lack renditions was quadratic (69 ms a batch half-way
    through 200,000 images, 3.7 ms with it)."""
    await cur.execute(
        """
        SELECT image_id, image_path, sha256 FROM generated_images g
        WHERE expires_at > now() AND (%(after)s::uuid IS NULL OR image_id > %(after)s)
          AND NOT EXISTS (
              SELECT 1 FROM image_renditions r
              WHERE r.image_id = g.image_id
                AND (%(after)s::uuid IS NULL OR r.image_id > %(after)s))
        ORDER BY image_id LIMIT %(limit)s
        """,
        {"after": after, "limit": limit},
    )
    return [Unrendered(**row) for row in await cur.fetchall()]


async def lock_unrendered(cur: aiopg.Cursor, image_id: UUID) -> bool:
    """Lock the image for its backfill; False when it is gone or has renditions by now."""
    await cur.execute(
        """
        SELECT 1 FROM generated_images g WHERE image_id = %s
          AND NOT EXISTS (SELECT 1 FROM image_renditions r WHERE r.image_id = g.image_id)
        FOR UPDATE
        """,
        (image_id,),
    )
    return await cur.fetchone() is not None


async def rendered_twin(cur: aiopg.Cursor, sha256: str) -> ImageRecord | None:
    """Another image with these bytes that has renditions (a reuse's source, or a reuse)."""
    await cur.execute(
        f"""
        SELECT {RECORD} FROM generated_images WHERE sha256 = %s
          AND EXISTS (
              SELECT 1 FROM image_renditions r WHERE r.image_id = generated_images.image_id)
        LIMIT 1
        """,
        (sha256,),
    )
    row = await cur.fetchone()
    return record_from_row(row) if row else None


async def set_decoded_facts(
    cur: aiopg.Cursor,
    image_id: UUID,
    width: int | None,
    height: int | None,
    placeholder: str | None,
) -> None:
    await cur.execute(
        "UPDATE generated_images SET width = %s, height = %s, placeholder = %s WHERE image_id = %s",
        (width, height, placeholder, image_id),
    )


@dataclass(frozen=True)
class Unhashed:
    """Bytes held by live images that have no perceptual hash yet, and where to read them."""

    sha256: str
    image_path: str


async def without_perceptual_hash(cur: aiopg.Cursor, after: str, limit: int) -> list[Unhashed]:
    """Live images' bytes with no perceptual hash, in sha256 order after `after` (resumable)."""
    await cur.execute(
        """
        SELECT sha256, min(image_path) AS image_path FROM generated_images
        WHERE perceptual_hash IS NULL AND expires_at > now() AND sha256 > %s
        GROUP BY sha256 ORDER BY sha256 LIMIT %s
        """,
        (after, limit),
    )
    return [Unhashed(**row) for row in await cur.fetchall()]


async def set_perceptual_hash(cur: aiopg.Cursor, sha256: str, perceptual_hash: bytes) -> int:
    """Every record of these bytes gets the hash; how many did."""
    await cur.execute(
        """
        UPDATE generated_images SET perceptual_hash = ('x' || %s)::bit(256)
        WHERE sha256 = %s AND perceptual_hash IS NULL
        """,
        (perceptual_hash.hex(), sha256),
    )
    return cur.rowcount
