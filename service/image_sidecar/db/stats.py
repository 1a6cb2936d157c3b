"""SQL for business figures: storage, images per day, hit rate, savings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import aiopg


@dataclass(frozen=True)
class StorageTotals:
    live_images: int
    # Every file a record names (originals and made renditions, expired ones not yet deleted
    # included), a reuse's counted as its own: what an object store holds. On a filesystem a
    # reuse is a hard link of its source, so the disk holds less by the reuses' share.
    stored_bytes: int
    stored_images: int  # records, live or expired and not yet deleted
    stored_files: int  # their originals and made renditions
    average_image_bytes: int  # of the live images' originals
    # The last successful cleanup; before the first one, when the schema was installed, so a
    # fresh install is not reported as overdue.
    last_cleanup_success: float
    last_scrub_success: float  # the last completed scrub cycle, the same way
    # How long ago the least recently checked image in service was checked (at most).
    scrub_oldest_check_age: float


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


# Folds the deltas the triggers appended (migrations/0016_store_scale.sql) into the totals: its
# cost is what changed since the last fold. Each minute's row, and the grand total under
# 'infinity'; in order, so concurrent folds of several replicas lock rows in the same order.
# Past minutes the cleanup emptied go (an index range of the minutes expired, not yet deleted).
_FOLD = """
WITH folded AS (DELETE FROM usage_deltas RETURNING *)
INSERT INTO usage_totals AS t
SELECT * FROM (
    SELECT expires_minute, sum(images), sum(original_bytes), sum(rendition_bytes)
    FROM folded GROUP BY expires_minute
    UNION ALL
    SELECT 'infinity', sum(images), sum(original_bytes), sum(rendition_bytes)
    FROM folded HAVING count(*) > 0
) AS changed
ORDER BY 1
ON CONFLICT (expires_minute) DO UPDATE SET
    images = t.images + EXCLUDED.images,
    original_bytes = t.original_bytes + EXCLUDED.original_bytes,
    rendition_bytes = t.rendition_bytes + EXCLUDED.rendition_bytes;
DELETE FROM usage_totals
WHERE expires_minute > '-infinity' AND expires_minute < (SELECT now()) AND images = 0
"""


async def storage_totals(cur: aiopg.Cursor) -> StorageTotals:
    """The store's figures from the totals kept as the data changes: the grand total, less the
    minutes already past (expired and not yet deleted: at most the time since the last cleanup)
    and the images of the current minute expired by now (an index range). Its cost follows the
    cleanup's backlog, never the store."""
    await cur.execute(
        _FOLD
        + """;
        WITH grand AS (
            SELECT coalesce(sum(images) FILTER (WHERE expires_minute = 'infinity'), 0) AS files,
                   coalesce(sum(images) FILTER (WHERE expires_minute = '-infinity'), 0)
                       AS renditions,
                   coalesce(sum(original_bytes) FILTER (WHERE expires_minute = 'infinity'), 0)
                       AS original_bytes,
                   coalesce(sum(rendition_bytes) FILTER (WHERE expires_minute = 'infinity'), 0)
                       AS rendition_bytes
            FROM usage_totals WHERE expires_minute IN ('infinity', '-infinity')
        ), past AS (
            SELECT coalesce(sum(images), 0) AS images, coalesce(sum(original_bytes), 0) AS bytes
            FROM usage_totals
            -- A subquery's bound is a parameter to the planner: always this index range, never a
            -- scan that computes the bound for every minute of the retention window.
            WHERE expires_minute > '-infinity'
              AND expires_minute < (SELECT date_trunc('minute', now()))
        ), this_minute AS (
            SELECT count(*) AS images, coalesce(sum(size_bytes), 0) AS bytes
            FROM generated_images
            WHERE expires_at >= date_trunc('minute', now()) AND expires_at <= now()
        ), live AS (
            SELECT grand.files - grand.renditions - past.images - this_minute.images AS images,
                   grand.original_bytes - past.bytes - this_minute.bytes AS bytes
            FROM grand, past, this_minute
        ), scrub AS (SELECT * FROM scrub_state)
        SELECT
            (grand.files - grand.renditions)::bigint AS stored_images,
            grand.files::bigint AS stored_files,
            (grand.original_bytes + grand.rendition_bytes)::bigint AS stored_bytes,
            live.images::bigint AS live_images,
            coalesce(round(live.bytes / nullif(live.images, 0)), 0)::bigint
                AS average_image_bytes,
            extract(epoch FROM coalesce(
                (SELECT max(finished_at) FROM cleanup_runs WHERE outcome = 'success'),
                (SELECT min(applied_at) FROM schema_migrations)
            ))::double precision AS last_cleanup_success,
            extract(epoch FROM coalesce(
                (SELECT last_success_at FROM scrub),
                (SELECT min(applied_at) FROM schema_migrations)
            ))::double precision AS last_scrub_success,
            extract(epoch FROM now() - coalesce(
                (SELECT previous_cycle_started_at FROM scrub),
                (SELECT cycle_started_at FROM scrub),
                (SELECT min(applied_at) FROM schema_migrations)
            ))::double precision AS scrub_oldest_check_age
        FROM grand, live
        """
    )
    row = await cur.fetchone()
    return StorageTotals(**row)


# The totals of the rows as they are: what a recount fills (migrations/0016 fills the same).
FILL_TOTALS = """
INSERT INTO usage_totals
SELECT date_trunc('minute', expires_at), count(*), sum(size_bytes), 0
FROM generated_images GROUP BY 1;
INSERT INTO usage_totals
SELECT '-infinity', count(size_bytes), 0, coalesce(sum(size_bytes), 0) FROM image_renditions;
INSERT INTO usage_totals
SELECT 'infinity', sum(images), sum(original_bytes), sum(rendition_bytes) FROM usage_totals;
"""


async def recount_storage(cur: aiopg.Cursor) -> None:
    """Rebuild the totals from the rows themselves (`image-sidecar recount`), inside the
    caller's transaction. Writers wait while it counts (a full read of both tables): a repair
    for an operator who doubts the figures, never part of a schedule."""
    await cur.execute(
        """
        LOCK TABLE generated_images, image_renditions IN SHARE MODE;
        LOCK TABLE usage_deltas, usage_totals IN EXCLUSIVE MODE;
        DELETE FROM usage_deltas;
        DELETE FROM usage_totals;
        """
        + FILL_TOTALS
    )


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
