"""SQL of the renditions made on first request: what to make, the claim of the one process
making it (single-flight across workers and replicas), and its size once made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aiopg


@dataclass(frozen=True)
class Wanted:
    """A rendition of a live image, and the original it is made from."""

    name: str
    format: str
    content_type: str
    size_bytes: int | None
    original_path: str
    original_sha256: str


async def wanted(cur: aiopg.Cursor, key: str) -> Wanted | None:
    await cur.execute(
        """
        SELECT r.name, r.format, r.content_type, r.size_bytes, g.image_path AS original_path,
            g.sha256 AS original_sha256
        FROM image_renditions r JOIN generated_images g USING (image_id)
        WHERE r.image_path = %s AND g.expires_at > now()
        """,
        (key,),
    )
    row = await cur.fetchone()
    return Wanted(**row) if row else None


async def claim(cur: aiopg.Cursor, key: str, seconds: float) -> Literal["taken", "held", "gone"]:
    """Take the claim to make `key` unless a live claim holds it (a lapsed one is taken over);
    `gone` when the rendition's image was deleted meanwhile."""
    await cur.execute(
        """
        UPDATE image_renditions SET render_claimed_until = now() + make_interval(secs => %s)
        WHERE image_path = %s AND (render_claimed_until IS NULL OR render_claimed_until < now())
        RETURNING 1
        """,
        (seconds, key),
    )
    if await cur.fetchone() is not None:
        return "taken"
    await cur.execute("SELECT 1 FROM image_renditions WHERE image_path = %s", (key,))
    return "held" if await cur.fetchone() is not None else "gone"


async def made(cur: aiopg.Cursor, key: str, size_bytes: int | None, sha256: str | None) -> None:
    """The rendition is stored (`size_bytes` and `sha256`, or as they were when None): the
    claim ends."""
    await cur.execute(
        """
        UPDATE image_renditions
        SET size_bytes = coalesce(%s, size_bytes), sha256 = coalesce(%s, sha256),
            render_claimed_until = NULL
        WHERE image_path = %s
        """,
        (size_bytes, sha256, key),
    )


async def unmade(cur: aiopg.Cursor, key: str) -> None:
    """The rendition's file is gone or bad: the next request (or the scrub) makes it again."""
    await cur.execute(
        "UPDATE image_renditions SET size_bytes = NULL, sha256 = NULL WHERE image_path = %s",
        (key,),
    )
