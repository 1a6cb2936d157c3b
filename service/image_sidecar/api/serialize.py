"""JSON shapes of the contract's records."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from image_sidecar.images.writer import Registration
from image_sidecar.models import CacheEntry, ImageRecord
from image_sidecar.prompt_cache.lookup import LookupResult
from image_sidecar.stats import BusinessStats


def image_json(record: ImageRecord, public_base_url: str) -> dict[str, Any]:
    return {
        "image_id": str(record.image_id),
        "game_code": record.game_code,
        "game_id": str(record.game_id),
        "round_id": str(record.round_id),
        "round_number": record.round_number,
        "player_id": str(record.player_id),
        "player_name": record.player_name,
        "submission_id": str(record.submission_id),
        "completed_sentence": record.completed_sentence,
        "prompt": record.prompt,
        "art_style": record.art_style,
        "ai_service": record.ai_service,
        "model": record.model,
        "size": record.size,
        # The current public base (a move to a CDN applies to old images too); the URL as
        # issued at upload is kept in the database's image_url column.
        "image_url": f"{public_base_url}/{record.image_path}",
        "image_path": record.image_path,
        "content_type": record.content_type,
        "size_bytes": record.size_bytes,
        "sha256": record.sha256,
        "width": record.width,
        "height": record.height,
        "placeholder": record.placeholder,
        "renditions": [
            {
                "name": rendition.name,
                "format": rendition.format,
                "url": f"{public_base_url}/{rendition.image_path}",
                "width": rendition.width,
                "height": rendition.height,
                "content_type": rendition.content_type,
                "size_bytes": rendition.size_bytes,
            }
            for rendition in record.renditions
        ],
        "prompt_hash": record.prompt_hash,
        "is_winner": record.is_winner,
        "generation_cost_usd": (
            None if record.generation_cost_usd is None else float(record.generation_cost_usd)
        ),
        "reused_from": None if record.reused_from is None else str(record.reused_from),
        "generated_at": record.generated_at.isoformat(),
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat(),
    }


def image_created_response(registration: Registration, public_base_url: str) -> web.Response:
    """201 with a new record; 200 with the record a retry of the same submission finds."""
    return web.json_response(
        image_json(registration.record, public_base_url),
        status=201 if registration.created else 200,
    )


def cache_entry_json(entry: CacheEntry, public_base_url: str) -> dict[str, Any]:
    return {
        "prompt_hash": entry.prompt_hash,
        "hit_count": entry.hit_count,
        "last_hit": entry.last_hit.isoformat(),
        "created_at": entry.created_at.isoformat(),
        "image": image_json(entry.image, public_base_url),
    }


def stats_json(stats: BusinessStats) -> dict[str, Any]:
    return {
        "days": stats.days,
        "images_per_day": [
            {
                "date": day.day.isoformat(),
                "images": day.images_generated + day.images_reused,
                "generated": day.images_generated,
                "reused": day.images_reused,
                "cost_saved_usd": float(day.cost_saved_usd),
            }
            for day in stats.per_day
        ],
        "cache_hit_rate": stats.cache_hit_rate,
        "cache_hits": stats.cache_hits,
        "live_images": stats.totals.live_images,
        "average_image_bytes": stats.totals.average_image_bytes,
        "storage_used_bytes": stats.totals.stored_bytes,
        "cost_saved_usd": float(stats.cost_saved_usd),
        "cost_saved_usd_all_time": float(stats.cost_saved_usd_all_time),
    }


def lookup_json(result: LookupResult, public_base_url: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": result.status, "prompt_hash": result.prompt_hash}
    if result.image is not None:
        answer["image"] = image_json(result.image, public_base_url)
    if result.claim_token is not None:
        answer["claim_token"] = str(result.claim_token)
    if result.retry_after_ms is not None:
        answer["retry_after_ms"] = result.retry_after_ms
    return answer
