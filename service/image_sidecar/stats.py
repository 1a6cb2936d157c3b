"""Business figures straight from the database: they survive restarts and agree across replicas."""

from __future__ import annotations

from typing import Any

import aiopg

from image_sidecar import db
from image_sidecar.db import stats as stats_rows


async def business_stats(pool: aiopg.Pool, days: int) -> dict[str, Any]:
    async with db.cursor(pool) as cur:
        per_day = await stats_rows.images_per_day(cur, days)
        totals = await stats_rows.storage_totals(cur)
        recent = await stats_rows.savings(cur, days)
        all_time = await stats_rows.savings(cur)
    generated = sum(day.images_generated for day in per_day)
    reused = sum(day.images_reused for day in per_day)
    return {
        "days": days,
        "images_per_day": [
            {
                "date": day.day.isoformat(),
                "images": day.images_generated + day.images_reused,
                "generated": day.images_generated,
                "reused": day.images_reused,
            }
            for day in per_day
        ],
        # Of the images players got in the period, the share served from the cache.
        "cache_hit_rate": round(reused / (generated + reused), 4) if generated + reused else None,
        "cache_hits": recent.hits,
        "live_images": totals.live_images,
        "average_image_bytes": totals.average_image_bytes,
        "storage_used_bytes": totals.stored_bytes,
        "cost_saved_usd": float(recent.cost_saved_usd),
        "cost_saved_usd_all_time": float(all_time.cost_saved_usd),
    }
