"""Operator endpoints: run the cleanup now, purge a game or a player's images, take content
down everywhere."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from image_sidecar.api import fields
from image_sidecar.appkeys import (
    blob_store_key,
    config_key,
    db_pool_key,
    image_processor_key,
    metrics_key,
)
from image_sidecar.batch import progress_in_log
from image_sidecar.lifecycle import cleanup, purge, scrub
from image_sidecar.safety import takedown


async def run_cleanup(request: web.Request) -> web.Response:
    app = request.app
    report = await cleanup.run_cleanup(
        app[db_pool_key],
        app[blob_store_key],
        app[config_key].retention,
        on_batch=progress_in_log("cleanup"),
    )
    app[metrics_key].cleanup_finished(report)
    report.raise_if_failed()
    return web.json_response(report.as_dict())


async def run_scrub(request: web.Request) -> web.Response:
    """A scrub run now, answered with its summary when it ends (paced as the schedule's; an
    interrupted run is resumed by the next). 200 whatever it found: the summary says."""
    app = request.app
    report = await scrub.run_scrub(
        app[db_pool_key],
        app[blob_store_key],
        app[image_processor_key],
        max_bytes_per_second=app[config_key].retention.scrub_max_bytes_per_second,
        on_progress=progress_in_log("scrub"),
    )
    app[metrics_key].scrub_finished(report)
    return web.json_response(report.as_dict())


async def purge_game(request: web.Request) -> web.Response:
    return await _purge(request, player_id=None)


async def purge_player(request: web.Request) -> web.Response:
    player_id = fields.uuid_value(request.match_info["player_id"], "player_id")
    return await _purge(request, player_id=player_id)


async def _purge(request: web.Request, player_id: UUID | None) -> web.Response:
    game_code = fields.game_code(request.match_info["game_code"])
    target = fields.purge_target(request)
    purged = await purge.purge(
        request.app[db_pool_key],
        request.app[blob_store_key],
        game_code,
        player_id,
        game_id=target.game_id,
        all_games=target.all_games,
        batch_size=request.app[config_key].retention.batch_size,
    )
    request.app[metrics_key].images_deleted(purged.tally)
    return web.json_response(
        {**purged.tally.as_dict(), "game_ids": [str(game_id) for game_id in purged.game_ids]}
    )


async def take_down(request: web.Request) -> web.Response:
    sha256 = fields.sha256_hex(request.match_info["sha256"])
    query = fields.takedown_query(request)
    config = request.app[config_key]
    taken = await takedown.take_down(
        request.app[db_pool_key],
        request.app[blob_store_key],
        request.app[image_processor_key],
        sha256,
        reason=query.reason,
        similar=query.similar,
        max_distance=config.moderation.block_similarity,
        batch_size=config.retention.batch_size,
        public_base_url=config.storage.public_base_url,
        purge_webhook_url=config.moderation.purge_webhook_url,
    )
    request.app[metrics_key].images_deleted(taken.tally)
    return web.json_response(
        {
            **taken.tally.as_dict(),
            "sha256": taken.sha256,
            "image_ids": taken.image_ids,
            "lookalike_image_ids": taken.lookalike_image_ids,
            "urls": taken.urls,
            "blocked": True,
            "cdn_notified": taken.cdn_notified,
        }
    )
