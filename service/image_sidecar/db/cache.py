"""SQL for the prompt cache: entries, claims, hits and their savings."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import aiopg

from image_sidecar.db.images import COLUMNS, record_from_row, renditions_column
from image_sidecar.models import CacheEntry

# Channel on which a finished upload announces its prompt hash to waiting lookups (any replica).
CACHE_CHANNEL = "image_cache"

_IMAGE_COLUMNS = ", ".join(f"gi.{name.strip()}" for name in COLUMNS.split(","))


async def live_entry(cur: aiopg.Cursor, prompt_hash: str) -> CacheEntry | None:
    """The entry for `prompt_hash` with a live image. When the image it points at has expired
    but another live image has the same bytes (a reuse), the entry moves there first: a live
    copy is never answered as a miss (a paid AI call)."""
    entry = await _entry_with_live_image(cur, prompt_hash)
    if entry is None and await _move_to_live_copy(cur, prompt_hash):
        entry = await _entry_with_live_image(cur, prompt_hash)
    return entry


async def _move_to_live_copy(cur: aiopg.Cursor, prompt_hash: str) -> bool:
    await cur.execute(
        """
        UPDATE image_cache ic SET image_id = copy.image_id
        FROM (
            SELECT live.image_id
            FROM image_cache c
            JOIN generated_images pointed ON pointed.image_id = c.image_id
            JOIN generated_images live ON live.sha256 = pointed.sha256
            WHERE c.prompt_hash = %(key)s AND live.expires_at > now()
              AND live.damaged_at IS NULL
              AND live.prompt IS NOT NULL  -- a picture still waiting for its sentence is no copy
            ORDER BY live.expires_at DESC LIMIT 1
        ) AS copy
        WHERE ic.prompt_hash = %(key)s
        RETURNING ic.prompt_hash
        """,
        {"key": prompt_hash},
    )
    return await cur.fetchone() is not None


async def _entry_with_live_image(cur: aiopg.Cursor, prompt_hash: str) -> CacheEntry | None:
    await cur.execute(
        f"""
        SELECT ic.hit_count, ic.last_hit, ic.created_at AS entry_created_at, {_IMAGE_COLUMNS},
               {renditions_column("gi")}
        FROM image_cache ic JOIN generated_images gi USING (image_id)
        WHERE ic.prompt_hash = %s AND gi.expires_at > now() AND gi.damaged_at IS NULL
        """,
        (prompt_hash,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return CacheEntry(
        prompt_hash=prompt_hash,
        hit_count=row.pop("hit_count"),
        last_hit=row.pop("last_hit"),
        created_at=row.pop("entry_created_at"),
        image=record_from_row(row),
    )


async def take_claim(
    cur: aiopg.Cursor, prompt_hash: str, claim_token: UUID, claim_seconds: int
) -> bool:
    """Claim the prompt unless someone holds a live claim. Concurrent callers: exactly one wins."""
    await cur.execute(
        """
        INSERT INTO cache_claims (prompt_hash, claim_token, expires_at)
        VALUES (%s, %s, now() + make_interval(secs => %s))
        ON CONFLICT (prompt_hash) DO UPDATE
            SET claim_token = EXCLUDED.claim_token, expires_at = EXCLUDED.expires_at
            WHERE cache_claims.expires_at <= now()
        RETURNING claim_token
        """,
        (prompt_hash, claim_token, claim_seconds),
    )
    return await cur.fetchone() is not None


async def forget_lapsed_claims(cur: aiopg.Cursor) -> int:
    """Claims whose holder never uploaded nor released (a game server that went away), an hour
    after they lapsed (once a cleanup). A lapsed claim already counts as none; left, they would
    pile up for good. The table holds only claims in flight and these: a scan of it is the
    day's, not the store's."""
    await cur.execute("DELETE FROM cache_claims WHERE expires_at < now() - interval '1 hour'")
    return cur.rowcount


async def release_claim(cur: aiopg.Cursor, claim_token: UUID) -> str | None:
    """Drop a live claim; the prompt hash it held, or None for an unknown or lapsed token."""
    await cur.execute(
        """
        DELETE FROM cache_claims WHERE claim_token = %s AND expires_at > now()
        RETURNING prompt_hash
        """,
        (claim_token,),
    )
    row = await cur.fetchone()
    return None if row is None else row["prompt_hash"]


async def announce(cur: aiopg.Cursor, prompt_hash: str) -> None:
    """Wake the lookups waiting on `prompt_hash` (every replica), when the transaction commits."""
    await cur.execute("SELECT pg_notify(%s, %s)", (CACHE_CHANNEL, prompt_hash))


async def claim_remaining_ms(cur: aiopg.Cursor, prompt_hash: str) -> int:
    """Milliseconds until the current claim on `prompt_hash` lapses (0 when there is none)."""
    await cur.execute(
        """
        SELECT greatest(0, ceil(extract(epoch FROM expires_at - now()) * 1000))::bigint AS ms
        FROM cache_claims WHERE prompt_hash = %s
        """,
        (prompt_hash,),
    )
    row = await cur.fetchone()
    return 0 if row is None else row["ms"]


async def remember_upload(
    cur: aiopg.Cursor, prompt_hash: str, image_id: UUID, prompt: str, claim_token: UUID | None
) -> None:
    """Point the prompt at a fresh upload (unless a live image has it already), complete its
    claim, and wake waiters on commit. hit_count starts at 1: the generation is the first use."""
    await cur.execute(
        """
        INSERT INTO image_cache (prompt_hash, image_id, prompt) VALUES (%s, %s, %s)
        ON CONFLICT (prompt_hash) DO UPDATE
            SET image_id = EXCLUDED.image_id, prompt = EXCLUDED.prompt, hit_count = 1,
                last_hit = now(), created_at = now()
            WHERE NOT EXISTS (
                SELECT 1 FROM generated_images gi
                WHERE gi.image_id = image_cache.image_id AND gi.expires_at > now()
                  AND gi.damaged_at IS NULL)
        """,
        (prompt_hash, image_id, prompt),
    )
    await cur.execute(
        """
        DELETE FROM cache_claims WHERE prompt_hash = %s OR claim_token = %s
        RETURNING prompt_hash
        """,
        (prompt_hash, claim_token),
    )
    hashes = {prompt_hash} | {row["prompt_hash"] for row in await cur.fetchall()}
    for completed in sorted(hashes):
        await announce(cur, completed)


async def count_reuse(
    cur: aiopg.Cursor,
    prompt_hash: str,
    ai_service: str | None,
    cost_saved_usd: Decimal,
) -> bool:
    """A hit's writes in one round trip, inside its transaction: the day's usage (the savings'
    history) and the entry's counter (atomic: concurrent hits never lose a count). The two rows
    every hit on a popular prompt shares are locked last and together, so concurrent hits wait
    on them for this one statement and the commit only. False when the prompt has no entry any
    more."""
    await cur.execute(
        """
        INSERT INTO daily_usage AS u (day, ai_service, reused, cost_saved_usd)
        VALUES ((now() AT TIME ZONE 'UTC')::date, %(service)s, 1, %(saved)s)
        ON CONFLICT (day, ai_service) DO UPDATE
            SET reused = u.reused + 1, cost_saved_usd = u.cost_saved_usd + EXCLUDED.cost_saved_usd;
        UPDATE image_cache SET hit_count = hit_count + 1, last_hit = now()
        WHERE prompt_hash = %(key)s RETURNING prompt_hash
        """,
        {
            "key": prompt_hash,
            "service": ai_service or "",
            "saved": cost_saved_usd,
        },
    )
    return await cur.fetchone() is not None


async def forget(cur: aiopg.Cursor, prompt_hash: str) -> bool:
    """Drop the prompt's mapping (moderation); False when there was none."""
    await cur.execute(
        "DELETE FROM image_cache WHERE prompt_hash = %s RETURNING prompt_hash", (prompt_hash,)
    )
    return await cur.fetchone() is not None
