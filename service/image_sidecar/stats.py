"""Business figures straight from the database: they survive restarts and agree across replicas."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from image_sidecar import db
from image_sidecar.db import stats as stats_rows
from image_sidecar.db.stats import DayFigures, StorageTotals


@dataclass(frozen=True)
class BusinessStats:
    days: int
    per_day: list[DayFigures]
    totals: StorageTotals
    cache_hits: int
    cost_saved_usd: Decimal
    cost_saved_usd_all_time: Decimal

    @property
    def cache_hit_rate(self) -> float | None:
        """Of the images players got in the period, the share served from the cache."""
        generated = sum(day.images_generated for day in self.per_day)
        reused = sum(day.images_reused for day in self.per_day)
        return round(reused / (generated + reused), 4) if generated + reused else None


async def business_stats(pool: db.Pool, days: int) -> BusinessStats:
    async with db.cursor(pool) as cur:
        per_day = await stats_rows.images_per_day(cur, days)
        totals = await stats_rows.storage_totals(cur)
        recent = await stats_rows.savings(cur, days)
        all_time = await stats_rows.savings(cur)
    return BusinessStats(
        days=days,
        per_day=per_day,
        totals=totals,
        cache_hits=recent.hits,
        cost_saved_usd=recent.cost_saved_usd,
        cost_saved_usd_all_time=all_time.cost_saved_usd,
    )


async def recount_storage(pool: db.Pool) -> dict[str, Any]:
    """Rebuild the storage totals from the rows (`image-sidecar recount`): the figures before
    and after, which differ only if something changed the tables behind the triggers' back."""
    async with db.cursor(pool) as cur:
        before = await stats_rows.storage_totals(cur)
    async with db.transaction(pool) as cur:
        await stats_rows.recount_storage(cur)
    async with db.cursor(pool) as cur:
        after = await stats_rows.storage_totals(cur)
    fields = ("stored_images", "stored_files", "stored_bytes", "live_images")
    return {
        "before": {name: getattr(before, name) for name in fields},
        "after": {name: getattr(after, name) for name in fields},
    }
