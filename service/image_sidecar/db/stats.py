"""SQL for business figures: storage, images per day, hit rate, savings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import aiopg


@dataclass(frozen=True)
class StorageTotals:
    live_images: int
    stored_bytes: int
    average_image_bytes: int
    # The last successful cleanup; before the first one, when the schema was installed, so a
    # fresh install is not reported as overdue.
    last_cleanup_success: float


@dataclass(frozen=True)
class DayFigures:
    day: date
    images_generated: int
    images_reused: int


@dataclass(frozen=True)
class Savings:
    hits: int
    cost_saved_usd: Decimal


async def storage_totals(cur: aiopg.Cursor) -> StorageTotals:
    """Reused images share their bytes (hard links), so each distinct content counts once."""
    await cur.execute(
        """
        SELECT
            (SELECT count(*) FROM generated_images WHERE expires_at > now()) AS live_images,
            (SELECT coalesce(sum(size_bytes), 0)::bigint FROM (
                SELECT DISTINCT ON (sha256) size_bytes FROM generated_images) AS contents
            ) AS stored_bytes,
            (SELECT coalesce(round(avg(size_bytes)), 0)::bigint FROM generated_images
             WHERE expires_at > now()) AS average_image_bytes,
            extract(epoch FROM coalesce(
                (SELECT max(finished_at) FROM cleanup_runs WHERE outcome = 'success'),
                (SELECT min(applied_at) FROM schema_migrations)
            ))::double precision AS last_cleanup_success
        """
    )
    row = await cur.fetchone()
    return StorageTotals(**row)


async def images_per_day(cur: aiopg.Cursor, days: int) -> list[DayFigures]:
    """One row per UTC day of the last `days`, oldest first, zeros included."""
    await cur.execute(
        """
        SELECT d::date AS day,
               count(gi.image_id) FILTER (WHERE gi.reused_from IS NULL) AS images_generated,
               count(gi.image_id) FILTER (WHERE gi.reused_from IS NOT NULL) AS images_reused
        FROM generate_series(
            (now() AT TIME ZONE 'UTC')::date - (%s - 1), (now() AT TIME ZONE 'UTC')::date,
            interval '1 day') AS d
        LEFT JOIN generated_images gi ON (gi.created_at AT TIME ZONE 'UTC')::date = d::date
        GROUP BY d ORDER BY d
        """,
        (days,),
    )
    return [DayFigures(**row) for row in await cur.fetchall()]


async def savings(cur: aiopg.Cursor, days: int | None = None) -> Savings:
    """Cache hits and the cost they avoided, all time or over the last `days`."""
    await cur.execute(
        """
        SELECT count(*) AS hits, coalesce(sum(cost_saved_usd), 0) AS cost_saved_usd
        FROM cache_hits
        WHERE %s::int IS NULL OR hit_at > now() - make_interval(days => %s::int)
        """,
        (days, days),
    )
    return Savings(**await cur.fetchone())
