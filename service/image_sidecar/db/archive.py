"""SQL of export and import: rows as JSON objects of their own columns (PostgreSQL's `to_jsonb`
and `jsonb_populate_record`), so that an archive carries every field and a later column needs
no code here."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import aiopg

# The images an export selects: one game (or a round of it), or one player's in every game.
_SELECTED = """
    (%(game_id)s::uuid IS NULL OR g.game_id = %(game_id)s)
    AND (%(round_number)s::int IS NULL OR g.round_number = %(round_number)s)
    AND (%(player_id)s::uuid IS NULL OR g.player_id = %(player_id)s)
    AND g.expires_at > now() AND g.damaged_at IS NULL
"""


async def newest_game(cur: aiopg.Cursor, game_code: str) -> UUID | None:
    await cur.execute(
        "SELECT game_id FROM games WHERE game_code = %s ORDER BY created_at DESC LIMIT 1",
        (game_code,),
    )
    row = await cur.fetchone()
    return None if row is None else row["game_id"]


async def selected_rows(
    cur: aiopg.Cursor, game_id: UUID | None, round_number: int | None, player_id: UUID | None
) -> dict[str, list[dict[str, Any]]]:
    """The rows an archive holds, by table: the images (in image_id order), their renditions
    (to be made again: no sizes), their games and rounds, and the winners among them."""
    selection = {"game_id": game_id, "round_number": round_number, "player_id": player_id}
    tables: dict[str, list[dict[str, Any]]] = {}
    queries = {
        "generated_images": f"""
            SELECT to_jsonb(g) - 'damaged_at' - 'perceptual_hash'
                   || jsonb_build_object('perceptual_hash', g.perceptual_hash::text) AS row
            FROM generated_images g WHERE {_SELECTED} ORDER BY g.image_id""",
        "image_renditions": f"""
            SELECT to_jsonb(r) - 'size_bytes' - 'sha256' - 'render_claimed_until' AS row
            FROM image_renditions r JOIN generated_images g USING (image_id)
            WHERE {_SELECTED} ORDER BY r.image_path""",
        "games": f"""
            SELECT to_jsonb(x) AS row FROM games x WHERE x.game_id IN (
                SELECT g.game_id FROM generated_images g WHERE {_SELECTED})
            ORDER BY x.game_id""",
        "game_rounds": f"""
            SELECT to_jsonb(x) AS row FROM game_rounds x WHERE (x.game_id, x.round_id) IN (
                SELECT g.game_id, g.round_id FROM generated_images g WHERE {_SELECTED})
            ORDER BY x.game_id, x.round_number""",
        "round_winners": f"""
            SELECT to_jsonb(w) AS row FROM round_winners w WHERE w.image_id IN (
                SELECT g.image_id FROM generated_images g WHERE {_SELECTED})
            ORDER BY w.game_id, w.round_number""",
    }
    for table, query in queries.items():
        await cur.execute(query, selection)
        tables[table] = [row["row"] for row in await cur.fetchall()]
    return tables


async def present_images(cur: aiopg.Cursor, image_ids: list[str]) -> dict[str, str]:
    """Of these images, those already stored: image_id -> sha256."""
    await cur.execute(
        "SELECT image_id::text, sha256 FROM generated_images WHERE image_id = ANY(%s::uuid[])",
        (image_ids,),
    )
    return {row["image_id"]: row["sha256"] for row in await cur.fetchall()}


async def stored_copy(cur: aiopg.Cursor, sha256: str) -> str | None:
    """The key of an image in service that already holds these bytes (to link, not copy)."""
    await cur.execute(
        """
        SELECT image_path FROM generated_images
        WHERE sha256 = %s AND expires_at > now() AND damaged_at IS NULL LIMIT 1
        """,
        (sha256,),
    )
    row = await cur.fetchone()
    return None if row is None else row["image_path"]


async def blocked(cur: aiopg.Cursor, sha256s: list[str]) -> list[str]:
    """Those of these contents that were taken down."""
    await cur.execute(
        "SELECT sha256 FROM blocked_content WHERE sha256 = ANY(%s::char(64)[]) ORDER BY sha256",
        (sha256s,),
    )
    return [row["sha256"] for row in await cur.fetchall()]


async def insert_rows(cur: aiopg.Cursor, table: str, rows: list[dict[str, Any]]) -> int:
    """Rows of `table` from an archive, each as its columns say; those already present (by
    primary key or any unique column) are left as they are. How many were inserted."""
    if table not in _IMPORTED:
        raise ValueError(table)
    inserted = 0
    for row in rows:
        await cur.execute(
            f"""
            INSERT INTO {table} SELECT * FROM jsonb_populate_record(NULL::{table}, %s::jsonb)
            ON CONFLICT DO NOTHING
            """,
            (json.dumps(row),),
        )
        inserted += cur.rowcount
    return inserted


async def restore_cache_entries(cur: aiopg.Cursor, image_ids: list[str]) -> int:
    """A cache entry for each prompt of these (restored) images, pointing at its first picture
    that is not a reuse (else its first reuse), unless a live image holds the prompt's entry
    already. How many entries were made or moved."""
    await cur.execute(
        """
        INSERT INTO image_cache (prompt_hash, image_id, prompt)
        SELECT DISTINCT ON (g.prompt_hash) g.prompt_hash, g.image_id, g.prompt
        FROM generated_images g
        WHERE g.image_id = ANY(%s::uuid[]) AND g.prompt_hash IS NOT NULL
          AND g.prompt IS NOT NULL AND g.expires_at > now() AND g.damaged_at IS NULL
        ORDER BY g.prompt_hash, g.reused_from IS NOT NULL, g.created_at
        ON CONFLICT (prompt_hash) DO UPDATE
            SET image_id = EXCLUDED.image_id, prompt = EXCLUDED.prompt
            WHERE NOT EXISTS (
                SELECT 1 FROM generated_images live
                WHERE live.image_id = image_cache.image_id AND live.expires_at > now()
                  AND live.damaged_at IS NULL)
        """,
        (image_ids,),
    )
    return cur.rowcount


_IMPORTED = frozenset(
    {"games", "game_rounds", "generated_images", "image_renditions", "round_winners"}
)
