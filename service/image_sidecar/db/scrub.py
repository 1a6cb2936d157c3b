"""SQL of the scrub: its lease and where it stopped, the images to check, what it repairs and
what it takes out of service."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import aiopg

from image_sidecar.db import leases
from image_sidecar.db.images import renditions_column
from image_sidecar.models import StoredRendition

QUARANTINE = "quarantine/"  # a damaged original's file moves under this prefix, same key after


@dataclass(frozen=True)
class Checked:
    """A live image as the scrub checks it: its original and its renditions."""

    image_id: UUID
    image_path: str
    size_bytes: int
    sha256: str
    renditions: tuple[StoredRendition, ...]


async def take_lease(cur: aiopg.Cursor, holder: UUID, seconds: float) -> bool:
    return await leases.take(cur, "scrub_state", holder, seconds)


async def give_back_lease(cur: aiopg.Cursor, holder: UUID) -> None:
    await leases.give_back(cur, "scrub_state", holder)


@dataclass(frozen=True)
class ScrubPosition:
    resume_after: UUID | None  # the last image the cycle under way checked; None: from the start
    # How long ago the last run's slice ended (None before the first): a slice covers the share
    # of the cycle that this time is.
    seconds_since_last_slice: float | None


async def position(cur: aiopg.Cursor) -> ScrubPosition:
    """Where the cycle under way stands (the run holds the lease, so the row exists); a cycle
    begins now when none is under way."""
    await cur.execute(
        """
        UPDATE scrub_state SET cycle_started_at = coalesce(cycle_started_at, now())
        RETURNING resume_after,
                  extract(epoch FROM now() - last_slice_at)::double precision
                      AS seconds_since_last_slice
        """
    )
    return ScrubPosition(**await cur.fetchone())


async def checked_up_to(cur: aiopg.Cursor, image_id: UUID | None) -> None:
    """The run (holding the lease, so the row exists) has checked every image up to
    `image_id`; None when the cycle reached the last image (a success: the next cycle begins
    now, and the images not checked again yet were checked in the one that ended)."""
    await cur.execute(
        """
        UPDATE scrub_state SET resume_after = %(image_id)s,
            last_success_at = CASE WHEN %(image_id)s::uuid IS NULL THEN now()
                                   ELSE last_success_at END,
            previous_cycle_started_at = CASE WHEN %(image_id)s::uuid IS NULL
                                             THEN cycle_started_at
                                             ELSE previous_cycle_started_at END,
            cycle_started_at = CASE WHEN %(image_id)s::uuid IS NULL THEN now()
                                    ELSE cycle_started_at END
        """,
        {"image_id": image_id},
    )


async def slice_done(cur: aiopg.Cursor) -> None:
    await cur.execute("UPDATE scrub_state SET last_slice_at = now()")


async def batch(cur: aiopg.Cursor, after: UUID | None, limit: int) -> list[Checked]:
    """Live images in service, in image_id order after `after`."""
    await cur.execute(
        f"""
        SELECT image_id, image_path, size_bytes, sha256, {renditions_column("g")}
        FROM generated_images g
        WHERE expires_at > now() AND damaged_at IS NULL
          AND (%(after)s::uuid IS NULL OR image_id > %(after)s)
        ORDER BY image_id LIMIT %(limit)s
        """,
        {"after": after, "limit": limit},
    )
    return [
        Checked(
            row["image_id"],
            row["image_path"],
            row["size_bytes"],
            row["sha256"],
            tuple(StoredRendition(**item) for item in row["renditions"]),
        )
        for row in await cur.fetchall()
    ]


async def copies(cur: aiopg.Cursor, sha256: str, but: str) -> list[str]:
    """Keys of other images in service with these bytes (a reuse's own copy on S3)."""
    await cur.execute(
        """
        SELECT DISTINCT image_path FROM generated_images
        WHERE sha256 = %s AND image_path <> %s AND damaged_at IS NULL
        """,
        (sha256, but),
    )
    return [row["image_path"] for row in await cur.fetchall()]


async def record_rendition(cur: aiopg.Cursor, key: str, sha256: str) -> None:
    """A rendition made before renditions recorded their digest, checked by its size."""
    await cur.execute(
        "UPDATE image_renditions SET sha256 = %s WHERE image_path = %s AND sha256 IS NULL",
        (sha256, key),
    )


async def take_out_of_service(cur: aiopg.Cursor, image_id: UUID) -> None:
    await cur.execute(
        "UPDATE generated_images SET damaged_at = now() WHERE image_id = %s", (image_id,)
    )


async def is_damaged(cur: aiopg.Cursor, key: str) -> bool:
    """Whether `key` is the original of an image taken out of service."""
    await cur.execute(
        "SELECT 1 FROM generated_images WHERE image_path = %s AND damaged_at IS NOT NULL",
        (key,),
    )
    return await cur.fetchone() is not None
