"""SQL for takedowns: the blocklist of content and of its look-alikes, and the images that hold
or resemble it.

Perceptual hashes are `bit(256)` columns, so that PostgreSQL measures distances itself
(`bit_count(a # b)`); they travel as 64 hexadecimal digits."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import aiopg

# Uploads and takedowns serialize on this lock (the two-key form, apart from any one-key lock):
# an upload holds it shared from its check to its commit, a takedown exclusively while it
# blocks. So an upload in flight either commits before the takedown expires its row, or sees
# the block, exact or look-alike.
_LOCK = "SELECT pg_advisory_xact_lock{mode}(1651272811, 1)"  # 1651272811: b"blk" + 0x6b
_HASH = "('x' || %s)::bit(256)"


@dataclass(frozen=True)
class TakenDown:
    image_id: UUID
    image_path: str
    image_url: str
    sha256: str


@dataclass(frozen=True)
class Blocked:
    """What an upload's check found: its exact bytes blocked, and the newest look-alike row (a
    worker whose copy of the look-alikes is older reads the rows since)."""

    exact: bool
    newest_lookalike_id: int


@dataclass(frozen=True)
class BlockedLookalike:
    id: int
    sha256: str  # the content taken down that this hash stands for
    perceptual_hash: bytes


@dataclass(frozen=True)
class Holder:
    image_path: str
    perceptual_hash: bytes | None


async def holders(cur: aiopg.Cursor, sha256: str, limit: int = 3) -> list[Holder]:
    """Images holding these bytes (live ones first): where a takedown reads them from."""
    await cur.execute(
        """
        SELECT image_path, perceptual_hash::text AS bits FROM generated_images
        WHERE sha256 = %s ORDER BY expires_at DESC LIMIT %s
        """,
        (sha256, limit),
    )
    return [
        Holder(row["image_path"], None if row["bits"] is None else _hash_bytes(row["bits"]))
        for row in await cur.fetchall()
    ]


def _hash_bytes(bits: str) -> bytes:
    """A `bit(256)` as PostgreSQL prints it ('0101...') -> 32 bytes."""
    return int(bits, 2).to_bytes(32, "big")


async def check(cur: aiopg.Cursor, sha256: str) -> Blocked:
    """Holds the blocklist's lock (shared) until commit. One round trip on every upload: the
    statements run in order, the lock before the check; both reads use a primary key."""
    await cur.execute(
        _LOCK.format(mode="_shared")
        + """;
        SELECT EXISTS (SELECT 1 FROM blocked_content WHERE sha256 = %(sha256)s) AS exact,
               coalesce((SELECT max(id) FROM blocked_lookalikes), 0) AS newest_lookalike_id
        """,
        {"sha256": sha256},
    )
    row = await cur.fetchone()
    return Blocked(**row)


async def lookalikes_after(cur: aiopg.Cursor, after_id: int) -> list[BlockedLookalike]:
    await cur.execute(
        """
        SELECT id, sha256, perceptual_hash::text AS bits FROM blocked_lookalikes
        WHERE id > %s ORDER BY id
        """,
        (after_id,),
    )
    return [
        BlockedLookalike(row["id"], row["sha256"], _hash_bytes(row["bits"]))
        for row in await cur.fetchall()
    ]


async def block_and_expire(
    cur: aiopg.Cursor, sha256: str, reason: str | None, lookalikes: list[bytes]
) -> list[TakenDown]:
    """Block the bytes and the look-alike hashes, and expire every image that holds the bytes
    (never listed or reused from the commit on; the deletion that follows, or any cleanup,
    removes them). Empty, and nothing blocked, when no image holds them."""
    await cur.execute(_LOCK.format(mode=""))
    held = await _expire(cur, "sha256 = %s", (sha256,))
    if held:
        await block(cur, [sha256], reason)
        if lookalikes:
            rows = ", ".join([f"(%s, {_HASH})"] * len(lookalikes))
            await cur.execute(
                f"INSERT INTO blocked_lookalikes (sha256, perceptual_hash) VALUES {rows}",
                [value for looks in lookalikes for value in (sha256, looks.hex())],
            )
    return held


async def block(cur: aiopg.Cursor, sha256s: list[str], reason: str | None) -> None:
    await cur.execute(
        """
        INSERT INTO blocked_content (sha256, reason) SELECT unnest(%s::char(64)[]), %s
        ON CONFLICT (sha256) DO NOTHING
        """,
        (sha256s, reason),
    )


async def expire_lookalikes(
    cur: aiopg.Cursor, lookalikes: list[bytes], max_distance: int, *, remove: bool
) -> list[TakenDown]:
    """Live images within `max_distance` bits of one of the hashes; with `remove`, expired
    (then deleted like the bytes taken down). A scan of the live images' hashes: a takedown is
    rare, and measured at about 0.04 s per 100,000 images (PostgreSQL 16, ten hashes)."""
    if not lookalikes:
        return []
    near = " OR ".join([f"bit_count(perceptual_hash # {_HASH}) <= %s"] * len(lookalikes))
    condition = f"expires_at > now() AND perceptual_hash IS NOT NULL AND ({near})"
    parameters = tuple(value for looks in lookalikes for value in (looks.hex(), max_distance))
    if remove:
        return await _expire(cur, condition, parameters)
    await cur.execute(
        f"SELECT image_id, image_path, image_url, sha256 FROM generated_images WHERE {condition}",
        parameters,
    )
    return [TakenDown(**row) for row in await cur.fetchall()]


async def _expire(
    cur: aiopg.Cursor, condition: str, parameters: tuple[object, ...]
) -> list[TakenDown]:
    await cur.execute(
        f"""
        UPDATE generated_images SET expires_at = least(expires_at, now())
        WHERE {condition}
        RETURNING image_id, image_path, image_url, sha256
        """,
        parameters,
    )
    return [TakenDown(**row) for row in await cur.fetchall()]
