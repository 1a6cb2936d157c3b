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
    last_scrub_success: float  # the same for the scrub


@dataclass(frozen=True)
class DayFigures:
    day: date
    images_generated: int
    images_reused: int
    cost_saved_usd: Decimal


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
            ) + (SELECT coalesce(sum(r.size_bytes), 0)::bigint
                 FROM image_renditions r JOIN generated_images g USING (image_id)
                 WHERE g.reused_from IS NULL  -- a reuse's renditions share the original's bytes
            ) AS stored_bytes,
            (SELECT coalesce(round(avg(size_bytes)), 0)::bigint FROM generated_images
             WHERE expires_at > now()) AS average_image_bytes,
            extract(epoch FROM coalesce(
                (SELECT max(finished_at) FROM cleanup_runs WHERE outcome = 'success'),
                (SELECT min(applied_at) FROM schema_migrations)
            ))::double precision AS last_cleanup_success,
            extract(epoch FROM coalesce(
                (SELECT last_success_at FROM scrub_state),
                (SELECT min(applied_at) FROM schema_migrations)
            ))::double precision AS last_scrub_success
        """
    )
    row = await cur.fetchone()
    return StorageTotals(**row)


async def record_usage(
    cur: aiopg.Cursor,
    ai_service: str | None,
    *,
    generated: int = 0,
    reused: int = 0,
    bytes_stored: int = 0,
    generation_cost_usd: Decimal = Decimal(0),
    cost_saved_usd: Decimal = Decimal(0),
) -> None:
    """Count what happened today (UTC) in the history that cleanup and purges never touch."""
    await cur.execute(
        """
        INSERT INTO daily_usage AS u (
            day, ai_service, generated, reused, bytes_stored, generation_cost_usd, cost_saved_usd)
        VALUES ((now() AT TIME ZONE 'UTC')::date, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (day, ai_service) DO UPDATE SET
            generated = u.generated + EXCLUDED.generated,
            reused = u.reused + EXCLUDED.reused,
            bytes_stored = u.bytes_stored + EXCLUDED.bytes_stored,
            generation_cost_usd = u.generation_cost_usd + EXCLUDED.generation_cost_usd,
            cost_saved_usd = u.cost_saved_usd + EXCLUDED.cost_saved_usd
        """,
        (ai_service or "", generated, reused, bytes_stored, generation_cost_usd, cost_saved_usd),
    )


async def images_per_day(cur: aiopg.Cursor, days: int) -> list[DayFigures]:
    """One row per UTC day of the last `days`, oldest first, zeros included, from the history
    (what happened that day, whatever was deleted since)."""
    await cur.execute(
        """
        SELECT d::date AS day,
               coalesce(sum(u.generated), 0)::int AS images_generated,
               coalesce(sum(u.reused), 0)::int AS images_reused,
               coalesce(sum(u.cost_saved_usd), 0) AS cost_saved_usd
        FROM generate_series(
            (now() AT TIME ZONE 'UTC')::date - (%s - 1), (now() AT TIME ZONE 'UTC')::date,
            interval '1 day') AS d
        LEFT JOIN daily_usage u ON u.day = d::date
        GROUP BY d ORDER BY d
        """,
        (days,),
    )
    return [DayFigures(**row) for row in await cur.fetchall()]


async def savings(cur: aiopg.Cursor, days: int | None = None) -> Savings:
    """Cache hits and the cost they avoided, all time or over the last `days` (UTC days)."""
    await cur.execute(
        """
        SELECT coalesce(sum(reused), 0)::int AS hits,
               coalesce(sum(cost_saved_usd), 0) AS cost_saved_usd
        FROM daily_usage
        WHERE %s::int IS NULL OR day > (now() AT TIME ZONE 'UTC')::date - %s::int
        """,
        (days, days),
    )
    return Savings(**await cur.fetchone())
