"""Handlers for uploading and listing images."""

from __future__ import annotations

from aiohttp import web

from image_sidecar.api import fields
from image_sidecar.api.body import json_object
from image_sidecar.api.multipart import read_upload
from image_sidecar.api.serialize import image_created_response, image_json
from image_sidecar.appkeys import (
    blob_store_key,
    config_key,
    db_pool_key,
    image_processor_key,
    lookalike_blocklist_key,
    metrics_key,
    moderation_hook_key,
)
from image_sidecar.errors import BlockedContent, InvalidField
from image_sidecar.images import describe, listing
from image_sidecar.images.upload import NewImage, store_upload
from image_sidecar.models import ImageRecord

UPLOAD_TEXT_FIELDS = fields.IMAGE_METADATA_FIELDS | {"claim_token"}


def _images_response(request: web.Request, records: list[ImageRecord]) -> web.Response:
    base_url = request.app[config_key].storage.public_base_url
    return web.json_response({"images": [image_json(r, base_url) for r in records]})


async def upload_image(request: web.Request) -> web.Response:
    config = request.app[config_key]
    form, data = await read_upload(request, config.storage.max_upload_bytes, UPLOAD_TEXT_FIELDS)
    claim_token = fields.optional_uuid(form.pop("claim_token", None), "claim_token")
    meta = fields.image_metadata(form, described=False)
    if claim_token is not None and meta.prompt is None:
        raise InvalidField("claim_token", "completes a prompt's claim: give completed_sentence")
    upload = NewImage(
        data,
        request.app[image_processor_key],
        config.cache.generation_costs,
        request.app[lookalike_blocklist_key],
        claim_token=claim_token,
        moderation=request.app[moderation_hook_key],
        text_fields=form,
    )
    metrics = request.app[metrics_key]
    try:
        registration = await store_upload(
            request.app[db_pool_key],
            request.app[blob_store_key],
            meta,
            upload,
            default_retention_days=config.retention.days,
            public_base_url=config.storage.public_base_url,
        )
    except BlockedContent as refused:
        metrics.uploads_blocked.labels(refused.match).inc()
        raise
    if registration.created:
        metrics.image_stored(registration.record)
    return image_created_response(registration, config.storage.public_base_url)


async def describe_image(request: web.Request) -> web.Response:
    """The sentence of a picture uploaded without one (the story's cacheImageMetadata)."""
    image_id = fields.uuid_value(request.match_info["image_id"], "image_id")
    description = fields.description(fields.string_fields(await json_object(request)))
    record = await describe.describe(request.app[db_pool_key], image_id, description)
    return web.json_response(image_json(record, request.app[config_key].storage.public_base_url))


async def list_round_images(request: web.Request) -> web.Response:
    game_code = fields.game_code(request.match_info["game_code"])
    round_ref = fields.round_ref(request.match_info["round"])
    game_id = fields.game_selector(request)
    records = await listing.list_round(request.app[db_pool_key], game_code, round_ref, game_id)
    return _images_response(request, records)


async def list_game_images(request: web.Request) -> web.Response:
    game_code = fields.game_code(request.match_info["game_code"])
    game_id = fields.game_selector(request)
    records = await listing.list_game(request.app[db_pool_key], game_code, game_id)
    return _images_response(request, records)


async def get_player_image(request: web.Request) -> web.Response:
    game_code = fields.game_code(request.match_info["game_code"])
    round_ref = fields.round_ref(request.match_info["round"])
    player_id = fields.uuid_value(request.match_info["player_id"], "player_id")
    game_id = fields.game_selector(request)
    record = await listing.get_player_image(
        request.app[db_pool_key], game_code, round_ref, player_id, game_id
    )
    return web.json_response(image_json(record, request.app[config_key].storage.public_base_url))
