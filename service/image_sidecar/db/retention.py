"""SQL for expiry, purges, orphan checks and the cleanup lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import aiopg

from image_sidecar.db.scrub import QUARANTINE
from image_sidecar.db.shares import KEPT_BY_A_SHARE


@dataclass(frozen=True)
class DoomedImage:
    image_id: UUID
    game_id: UUID
    image_path: str
    size_bytes: int
    damaged: bool  # taken out of service: its file is under QUARANTINE, deleted with it
    # Its renditions' keys and sizes (0 for one not made yet): deleted with it.
    rendition_paths: list[str]
    rendition_sizes: list[int]


@dataclass(frozen=True)
class CacheFixups:
    moved: int
    removed: int


async def take_cleanup_lease(cur: aiopg.Cursor, holder: UUID, seconds: float) -> bool:
    """The cleanup's lease for `seconds`, unless another holder's lease is still running."""
    await cur.execute(
        """
        INSERT INTO cleanup_lease (holder, expires_at)
        VALUES (%(holder)s, now() + make_interval(secs => %(seconds)s))
        ON CONFLICT (only_row) DO UPDATE
            SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
            WHERE cleanup_lease.expires_at <= now() OR cleanup_lease.holder = EXCLUDED.holder
        RETURNING holder
        """,
        {"holder": holder, "seconds": seconds},
    )
    return await cur.fetchone() is not None


async def end_cleanup_lease(cur: aiopg.Cursor, holder: UUID) -> None:
    await cur.execute("DELETE FROM cleanup_lease WHERE holder = %s", (holder,))


async def expire_now(cur: aiopg.Cursor, game_ids: list[UUID], player_id: UUID | None = None) -> int:
    """Make games' (or one player's) live images expired, so no listing shows them any more."""
    await cur.execute(
        """
        UPDATE generated_images SET expires_at = now()
        WHERE game_id = ANY(%s::uuid[]) AND (%s::uuid IS NULL OR player_id = %s)
          AND expires_at > now()
        """,
        (game_ids, player_id, player_id),
    )
    return cur.rowcount


async def lock_expired_batch(
    cur: aiopg.Cursor,
    limit: int,
    game_ids: list[UUID] | None = None,
    player_id: UUID | None = None,
    *,
    sha256s: list[str] | None = None,
    skip: list[UUID] | None = None,
    as_of: datetime | None = None,
) -> list[DoomedImage]:
    """Lock up to `limit` expired images (optionally only those with some bytes), except those
    in `skip`; rows another run holds are skipped, not waited for. The general cleanup (no
    games, no bytes named) keeps the images a live share covers; a purge or takedown does not."""
    targeted = game_ids is not None or sha256s is not None
    # For the rest of the batch's transaction: on a large table the planner's estimates make
    # JIT compile these short statements on every batch (187 ms of compiling for 6 ms of work).
    await cur.execute("SET LOCAL jit = off")
    await cur.execute(
        f"""
        SELECT image_id, game_id, image_path, size_bytes, damaged_at IS NOT NULL AS damaged,
               ARRAY(SELECT r.image_path FROM image_renditions r
                     WHERE r.image_id = g.image_id ORDER BY r.image_path) AS rendition_paths,
               ARRAY(SELECT coalesce(r.size_bytes, 0) FROM image_renditions r
                     WHERE r.image_id = g.image_id ORDER BY r.image_path) AS rendition_sizes
        FROM generated_images g
        WHERE expires_at <= coalesce(%(as_of)s::timestamptz, now())
          AND (%(game_ids)s::uuid[] IS NULL OR game_id = ANY(%(game_ids)s::uuid[]))
          AND (%(player_id)s::uuid IS NULL OR player_id = %(player_id)s)
          AND (%(sha256s)s::char(64)[] IS NULL OR sha256 = ANY(%(sha256s)s::char(64)[]))
          AND NOT image_id = ANY(%(skip)s::uuid[])
          AND (%(targeted)s OR NOT {KEPT_BY_A_SHARE})
        ORDER BY expires_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
        """,
        {
            "as_of": as_of,
            "game_ids": game_ids,
            "player_id": player_id,
            "sha256s": sha256s,
            "skip": skip or [],
            "targeted": targeted,
            "limit": limit,
        },
    )
    return [DoomedImage(**row) for row in await cur.fetchall()]


async def count_expired(cur: aiopg.Cursor, as_of: datetime | None = None) -> int:
    """How many images have expired by `as_of` (or now): the cleanup's backlog, an index range
    (a day's expiry, not the store)."""
    await cur.execute(
        "SELECT count(*) AS n FROM generated_images "
        "WHERE expires_at <= coalesce(%s::timestamptz, now())",
        (as_of,),
    )
    return (await cur.fetchone())["n"]


async def move_or_drop_cache_entries(
    cur: aiopg.Cursor, image_ids: list[UUID], as_of: datetime | None = None
) -> CacheFixups:
    """Entries of doomed images move to an image with the same bytes (a reuse) still live at
    `as_of` (or now), or go. Most batches hold no cached image: one index probe answers that."""
    await cur.execute(
        "SELECT EXISTS (SELECT 1 FROM image_cache WHERE image_id = ANY(%s::uuid[])) AS cached",
        (image_ids,),
    )
    if not (await cur.fetchone())["cached"]:
        return CacheFixups(moved=0, removed=0)
    await cur.execute(
        """
        UPDATE image_cache ic SET image_id = successor.image_id
        FROM (
            SELECT DISTINCT ON (c.prompt_hash) c.prompt_hash, g2.image_id
            FROM image_cache c
            JOIN generated_images g1 ON g1.image_id = c.image_id
            JOIN generated_images g2 ON g2.sha256 = g1.sha256
            WHERE c.image_id = ANY(%(doomed)s::uuid[])
              AND g2.expires_at > coalesce(%(as_of)s::timestamptz, now())
              AND g2.prompt IS NOT NULL AND g2.damaged_at IS NULL
              AND NOT g2.image_id = ANY(%(doomed)s::uuid[])
            ORDER BY c.prompt_hash, g2.expires_at DESC
        ) AS successor
        WHERE ic.prompt_hash = successor.prompt_hash
        """,
        {"doomed": image_ids, "as_of": as_of},
    )
    moved = cur.rowcount
    await cur.execute("DELETE FROM image_cache WHERE image_id = ANY(%s::uuid[])", (image_ids,))
    return CacheFixups(moved=moved, removed=cur.rowcount)


async def delete_images(cur: aiopg.Cursor, image_ids: list[UUID]) -> int:
    await cur.execute("DELETE FROM generated_images WHERE image_id = ANY(%s::uuid[])", (image_ids,))
    return cur.rowcount


async def known_keys(cur: aiopg.Cursor, keys: list[str]) -> set[str]:
    """Those of `keys` that some row (live or expired) still names, a damaged original's
    quarantined file included. Every branch is a probe of a unique index on image_path."""
    quarantined = [key.removeprefix(QUARANTINE) for key in keys if key.startswith(QUARANTINE)]
    await cur.execute(
        """
        SELECT image_path FROM generated_images WHERE image_path = ANY(%(keys)s::text[])
        UNION ALL
        SELECT image_path FROM image_renditions WHERE image_path = ANY(%(keys)s::text[])
        UNION ALL
        SELECT %(quarantine)s || image_path FROM generated_images
        WHERE image_path = ANY(%(quarantined)s::text[]) AND damaged_at IS NOT NULL
        """,
        {"keys": keys, "quarantined": quarantined, "quarantine": QUARANTINE},
    )
    return {row["image_path"] for row in await cur.fetchall()}


async def forget_empty_games(cur: aiopg.Cursor, game_ids: list[UUID]) -> None:
    """Of `game_ids` (those a batch of deletions touched), the games (and their rounds) left
    without any image: forgotten now if they began over a day ago, else noted in
    emptied_games for `forget_emptied_games` a day later (a purge of a game in play must not
    take the row a late upload of it still needs)."""
    await cur.execute(
        """
        WITH empty AS (
            SELECT g.game_id, g.created_at FROM games g
            WHERE g.game_id = ANY(%s::uuid[])
              AND NOT EXISTS (SELECT 1 FROM generated_images gi WHERE gi.game_id = g.game_id)
        ), forgotten AS (
            DELETE FROM games g USING empty e
            WHERE g.game_id = e.game_id AND e.created_at < now() - interval '1 day'
        )
        INSERT INTO emptied_games (game_id)
        SELECT game_id FROM empty WHERE created_at >= now() - interval '1 day'
        ON CONFLICT DO NOTHING
        """,
        (game_ids,),
    )


async def forget_emptied_games(cur: aiopg.Cursor) -> int:
    """The games noted as emptied young, a day on, if still without images (once a cleanup)."""
    await cur.execute(
        """
        WITH due AS (
            DELETE FROM emptied_games WHERE emptied_at < now() - interval '1 day'
            RETURNING game_id
        )
        DELETE FROM games g USING due
        WHERE g.game_id = due.game_id
          AND NOT EXISTS (SELECT 1 FROM generated_images gi WHERE gi.game_id = g.game_id)
        """
    )
    return cur.rowcount


async def record_run(
    cur: aiopg.Cursor, outcome: str, images_deleted: int, bytes_freed: int, seconds: float
) -> None:
    await cur.execute(
        """
        INSERT INTO cleanup_runs (outcome, images_deleted, bytes_freed, seconds)
        VALUES (%s, %s, %s, %s)
        """,
        (outcome, images_deleted, bytes_freed, seconds),
    )
