"""SQL for takedowns: the blocklist of content, and the images that hold it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import aiopg

# Uploads of some bytes and a takedown of them serialize on this lock (keyed by the digest):
# an upload in flight either commits before the takedown expires its row, or sees the block.
_LOCK = "SELECT pg_advisory_xact_lock{mode}(('x' || substr(%(sha256)s, 1, 16))::bit(64)::bigint)"


@dataclass(frozen=True)
class TakenDown:
    image_id: UUID
    image_path: str
    image_url: str


async def is_blocked(cur: aiopg.Cursor, sha256: str) -> bool:
    """Whether these bytes were taken down. Holds the digest's lock (shared) until commit. One
    round trip on every upload: the statements run in order, the lock before the check."""
    await cur.execute(
        _LOCK.format(mode="_shared") + "; SELECT 1 FROM blocked_content WHERE sha256 = %(sha256)s",
        {"sha256": sha256},
    )
    return await cur.fetchone() is not None


async def block_and_expire(cur: aiopg.Cursor, sha256: str, reason: str | None) -> list[TakenDown]:
    """Block the bytes and expire every image that holds them (never listed or reused from the
    commit on; the deletion that follows, or any cleanup, removes them). Empty, and nothing
    blocked, when no image holds them."""
    await cur.execute(_LOCK.format(mode=""), {"sha256": sha256})
    await cur.execute(
        """
        UPDATE generated_images SET expires_at = least(expires_at, now())
        WHERE sha256 = %s
        RETURNING image_id, image_path, image_url
        """,
        (sha256,),
    )
    held = [TakenDown(**row) for row in await cur.fetchall()]
    if held:
        await cur.execute(
            """
            INSERT INTO blocked_content (sha256, reason) VALUES (%s, %s)
            ON CONFLICT (sha256) DO NOTHING
            """,
            (sha256, reason),
        )
    return held
