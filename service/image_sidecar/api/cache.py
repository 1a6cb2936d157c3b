"""Handlers of the prompt cache: lookup, entry, moderation, hits."""

from __future__ import annotations

from aiohttp import web

from image_sidecar.api import fields
from image_sidecar.api.body import json_object
from image_sidecar.api.serialize import (
    cache_entry_json,
    image_created_response,
    image_json,
    lookup_json,
)
from image_sidecar.appkeys import (
    blob_store_key,
    config_key,
    db_pool_key,
    metrics_key,
    notification_hub_key,
)
from image_sidecar.errors import InvalidField
from image_sidecar.images.writer import Registration
from image_sidecar.models import ImageMetadata
from image_sidecar.prompt_cache import hits, reuse
from image_sidecar.prompt_cache import lookup as cache_lookup
from image_sidecar.prompt_cache.prompts import Prompt

LOOKUP_FIELDS = frozenset({"prompt", "art_style", "model", "size", "wait_ms"})


async def lookup(request: web.Request) -> web.Response:
    config = request.app[config_key]
    raw = await json_object(request)
    register_raw = raw.pop("register", None)
    body = fields.string_fields(raw)
    fields.reject_unknown(body, LOOKUP_FIELDS)
    if "prompt" not in body:
        raise InvalidField("prompt", "is required")
    prompt = Prompt(
        text=fields.text(body["prompt"], "prompt", fields.MAX_PROMPT_CHARS),
        art_style=fields.style(body.get("art_style"), "art_style"),
        model=fields.style(body.get("model"), "model"),
        size=fields.label(body.get("size"), "size"),
    )
    wait_ms = fields.bounded_int(body.get("wait_ms", "0"), "wait_ms", 0, cache_lookup.MAX_WAIT_MS)
    meta = None if register_raw is None else _registration_fields(register_raw, prompt)
    looked_up = await reuse.lookup_and_register(
        request.app[db_pool_key],
        request.app[blob_store_key],
        request.app[notification_hub_key],
        prompt,
        meta,
        config.cache.generation_costs,
        claim_seconds=config.cache.claim_seconds,
        wait_ms=wait_ms,
        default_retention_days=config.retention.days,
        public_base_url=config.storage.public_base_url,
    )
    metrics = request.app[metrics_key]
    for status in looked_up.statuses:
        metrics.cache_lookups.labels(status).inc()
    answer = lookup_json(looked_up.result, config.storage.public_base_url)
    if looked_up.registration is not None:
        _count_registered_hit(request, looked_up.registration)
        answer["image"] = image_json(looked_up.registration.record, config.storage.public_base_url)
        answer["registered"] = True
    return web.json_response(answer)


def _registration_fields(raw: object, prompt: Prompt) -> ImageMetadata:
    """The `register` object of a lookup: a hit's fields, the sentence defaulting to the
    looked-up prompt. A fault names its field as `register.<field>`."""
    if not isinstance(raw, dict):
        raise InvalidField("register", "must be an object with the fields of a hit")
    try:
        values = fields.string_fields(raw)
        values.setdefault("completed_sentence", prompt.text)
        return fields.image_metadata(values)
    except InvalidField as exc:
        raise InvalidField(f"register.{exc.field}", exc.reason) from None


def _count_registered_hit(request: web.Request, registration: Registration) -> None:
    if registration.created:  # a retry of the same submission was counted the first time
        request.app[metrics_key].cache_hit(
            registration.cost_saved_usd, registration.record.ai_service
        )


async def get_entry(request: web.Request) -> web.Response:
    key = fields.prompt_hash(request.match_info["prompt_hash"])
    entry = await cache_lookup.get_entry(request.app[db_pool_key], key)
    return web.json_response(
        cache_entry_json(entry, request.app[config_key].storage.public_base_url)
    )


async def forget_entry(request: web.Request) -> web.Response:
    key = fields.prompt_hash(request.match_info["prompt_hash"])
    await cache_lookup.forget(request.app[db_pool_key], key)
    return web.Response(status=204)


async def register_hit(request: web.Request) -> web.Response:
    """A hit registered as the player's picture (POST /api/cache/{hash}/hits)."""
    config = request.app[config_key]
    key = fields.prompt_hash(request.match_info["prompt_hash"])
    # The sentence may be left out: the entry knows its own (given, it must match); a prompt
    # given alone is the sentence too, as for a lookup with `register`.
    values = fields.string_fields(await json_object(request))
    if "prompt" in values:
        values.setdefault("completed_sentence", values["prompt"])
    meta = fields.image_metadata(values, described=False)
    registration = await reuse.register_hit(
        request.app[db_pool_key],
        request.app[blob_store_key],
        key,
        meta,
        config.cache.generation_costs,
        default_retention_days=config.retention.days,
        public_base_url=config.storage.public_base_url,
    )
    _count_registered_hit(request, registration)
    return image_created_response(registration, config.storage.public_base_url)


async def count_hit(request: web.Request) -> web.Response:
    """A hit that registers no record (the story's recordCacheHit): counted, with its saving."""
    key = fields.prompt_hash(request.match_info["prompt_hash"])
    entry, saved = await hits.count_hit(
        request.app[db_pool_key], key, request.app[config_key].cache.generation_costs
    )
    request.app[metrics_key].cache_hit(saved, entry.image.ai_service)
    return web.json_response(
        cache_entry_json(entry, request.app[config_key].storage.public_base_url)
    )


async def release_claim(request: web.Request) -> web.Response:
    claim_token = fields.uuid_value(request.match_info["claim_token"], "claim_token")
    reason = fields.reason(request)
    await cache_lookup.release(request.app[db_pool_key], claim_token, reason)
    return web.Response(status=204)
