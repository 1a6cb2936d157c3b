"""Operators' endpoints: liveness, readiness, metrics, business figures, the OpenAPI document."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from image_sidecar import db
from image_sidecar.api import fields
from image_sidecar.api.serialize import stats_json
from image_sidecar.appkeys import (
    blob_store_key,
    config_key,
    db_pool_key,
    image_processor_key,
    metrics_key,
)
from image_sidecar.errors import SidecarError
from image_sidecar.stats import business_stats
from image_sidecar.storage.base import BlobStore

# A year of the history (daily_usage), which outlives the images it counts.
MAX_STATS_DAYS = 365


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Nothing else: restarting it mends no database."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the process can take traffic, which it can while a dependency is down (pictures
    on disk are served, requests that need the database answer 503 with Retry-After), so a
    degraded state is reported in the body and in `sidecar_dependency_up`, not by a 503 that
    would take a pod out of its Service: as a native sidecar, the game server with it. With
    `?strict=true` a degraded state is a 503, for a deployment whose replicas stand behind a
    load balancer of their own (docs/operations.md)."""
    checks: dict[str, str] = {}
    try:
        await db.ping(request.app[db_pool_key])
        checks["database"] = "ok"
    except SidecarError as exc:
        checks["database"] = exc.message
    try:
        checks["storage"] = await _storage_check(
            request.app[blob_store_key], request.app[config_key].storage.min_free_bytes
        )
    except SidecarError as exc:
        checks["storage"] = exc.message
    metrics = request.app[metrics_key]
    for dependency, state in checks.items():
        metrics.dependency_up.labels(dependency).set(1 if state == "ok" else 0)
    healthy = all(value == "ok" for value in checks.values())
    strict = fields.boolean(request.query.get("strict", "false"), "strict")
    refused = strict and not healthy
    return web.json_response(
        {"status": "ready" if healthy else "degraded", "checks": checks},
        status=503 if refused else 200,
        headers={"Retry-After": "5"} if refused else {},
    )


async def _storage_check(store: BlobStore, min_free_bytes: int) -> str:
    """Writable, and with room for a few more uploads: a replica whose every upload would get
    507 leaves the load balancer's rotation."""
    await store.health_check()
    free = (await store.usage()).free_bytes
    if free is not None and free < min_free_bytes:
        return f"only {free} bytes free, under IMAGE_MIN_FREE_BYTES ({min_free_bytes})"
    return "ok"


async def stats(request: web.Request) -> web.Response:
    days = fields.bounded_int(request.query.get("days", "7"), "days", 1, MAX_STATS_DAYS)
    figures = stats_json(await business_stats(request.app[db_pool_key], days))
    figures["rendition_formats"] = list(request.app[image_processor_key].rendition_formats)
    return web.json_response(figures)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[metrics_key].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@cache
def load_openapi() -> dict:
    return json.loads(resources.files("image_sidecar").joinpath("openapi.json").read_text())


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(load_openapi())
