"""SQL for moving images between stores (`image-sidecar migrate-store`)."""

from __future__ import annotations

from dataclasses import dataclass

import aiopg


@dataclass(frozen=True)
class StoredFile:
    """A file of a live image: the original (with its recorded digest) or a rendition."""

    image_path: str
    content_type: str
    size_bytes: int
    sha256: str | None  # None for renditions: their digest is not recorded


async def files_to_copy(cur: aiopg.Cursor, target: str, after: str, limit: int) -> list[StoredFile]:
    """The next live files (in path order, after `after`) not yet copied to `target`. Each
    branch walks its table's unique index on image_path from `after` and stops at `limit`, and
    looks at the copies from `after` on only (redundant for the result, but without it the
    planner's anti-join reads every copy made so far: a batch would cost the run's progress): a
    batch costs the same whatever the store holds."""
    await cur.execute(
        """
        SELECT * FROM (
            (SELECT g.image_path, g.content_type, g.size_bytes, g.sha256::text AS sha256
             FROM generated_images g
             WHERE g.image_path > %(after)s AND g.expires_at > now()
               AND NOT EXISTS (SELECT 1 FROM store_copies c
                               WHERE c.target = %(target)s AND c.image_path > %(after)s
                                 AND c.image_path = g.image_path)
             ORDER BY g.image_path LIMIT %(limit)s)
            UNION ALL
            (SELECT r.image_path, r.content_type, r.size_bytes, NULL
             FROM image_renditions r JOIN generated_images g USING (image_id)
             WHERE r.image_path > %(after)s AND g.expires_at > now()
               AND r.size_bytes IS NOT NULL  -- made: there is a file
               AND NOT EXISTS (SELECT 1 FROM store_copies c
                               WHERE c.target = %(target)s AND c.image_path > %(after)s
                                 AND c.image_path = r.image_path)
             ORDER BY r.image_path LIMIT %(limit)s)
        ) AS f
        ORDER BY image_path LIMIT %(limit)s
        """,
        {"after": after, "target": target, "limit": limit},
    )
    return [StoredFile(**row) for row in await cur.fetchall()]


async def already_copied(cur: aiopg.Cursor, target: str) -> int:
    await cur.execute(
        """
        SELECT count(*) AS n FROM store_copies c
        WHERE c.target = %s AND (
            EXISTS (SELECT 1 FROM generated_images g
                    WHERE g.image_path = c.image_path AND g.expires_at > now())
            OR EXISTS (SELECT 1 FROM image_renditions r JOIN generated_images g USING (image_id)
                       WHERE r.image_path = c.image_path AND g.expires_at > now()))
        """,
        (target,),
    )
    return (await cur.fetchone())["n"]


async def record_copy(
    cur: aiopg.Cursor, target: str, image_path: str, size_bytes: int, sha256: str
) -> None:
    await cur.execute(
        """
        INSERT INTO store_copies (target, image_path, size_bytes, sha256) VALUES (%s, %s, %s, %s)
        ON CONFLICT (target, image_path) DO UPDATE
            SET size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, copied_at = now()
        """,
        (target, image_path, size_bytes, sha256),
    )
