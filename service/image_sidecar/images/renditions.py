"""Renditions made when first asked for, once, and stored beside their original.

An upload makes only the renditions every judge screen loads (IMAGE_RENDITIONS_AT_UPLOAD) from
its own decode; the others are listed from the start (their URL and size follow from the
original's) and made by the first GET that finds no file: through the sidecar's static route,
or through nginx's `try_files` falling back to it. From then on they are plain files, served
by the sidecar, nginx or a CDN.

Single-flight: within a process, concurrent requests for one rendition await the same making;
across workers and replicas, a claim in its database row lets one process make it while the
others wait for its file (a claim whose holder died lapses after CLAIM_SECONDS). No database
connection is held while the picture is read, rendered or written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from image_sidecar import db
from image_sidecar.appkeys import (
    blob_store_key,
    config_key,
    db_pool_key,
    image_processor_key,
    rendition_maker_key,
)
from image_sidecar.db import renditions as rendition_rows
from image_sidecar.errors import ServiceBusy
from image_sidecar.images.pool import ImageProcessor
from image_sidecar.storage.base import BlobNotFound, BlobStore

log = structlog.get_logger(__name__)

# A claim outlives any honest making (a few hundred milliseconds) by far.
CLAIM_SECONDS = 30.0
# How often a process waiting for another's making looks for its file.
_POLL_SECONDS = 0.05


class RenditionMaker:
    def __init__(
        self, pool: db.Pool, store: BlobStore, processor: ImageProcessor, *, wait_seconds: float
    ) -> None:
        self._pool = pool
        self._store = store
        self._processor = processor
        self._wait_seconds = wait_seconds
        self._making: dict[str, asyncio.Future[bool]] = {}

    async def ensure(self, key: str) -> bool:
        """Make the rendition stored under `key` unless it is there by now; whether this call
        made it (for the metrics: a rendition is counted once). BlobNotFound when `key` is no
        live image's rendition; ServiceBusy when picture work is saturated."""
        making = self._making.get(key)
        first = making is None
        if making is None:
            making = self._making[key] = asyncio.ensure_future(self._make(key))
            making.add_done_callback(lambda _: self._making.pop(key, None))
        made = await asyncio.shield(making)  # one caller giving up does not stop the making
        return first and made

    async def _make(self, key: str) -> bool:
        async with db.cursor(self._pool) as cur:
            wanted = await rendition_rows.wanted(cur, key)
        if wanted is None or not await self._claim(key):
            raise BlobNotFound(f"no such image: {key}")
        size = sha256 = None
        try:
            if not await self._store.exists(key):
                original = await self._store.read(wanted.original_path)
                made = await self._processor.render(original, wanted.name, wanted.format)
                if made.sha256 == wanted.original_sha256:  # a web-ready original's large
                    await self._store.link_many([(wanted.original_path, key)])
                else:
                    await self._store.put(key, made.data, made.content_type, made.sha256)
                size, sha256 = len(made.data), made.sha256
                log.info("rendition_made", key=key, size_bytes=size)
        finally:
            async with db.cursor(self._pool) as cur:
                await rendition_rows.made(cur, key, size, sha256)
        return size is not None

    async def _claim(self, key: str) -> bool:
        """True once this process holds the claim to make `key`, or another process made it
        while this one waited; False when its image is gone. ServiceBusy after
        IMAGE_PROCESSING_MAX_WAIT_SECONDS of waiting for another process's making."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        while True:
            async with db.cursor(self._pool) as cur:
                claim = await rendition_rows.claim(cur, key, CLAIM_SECONDS)
            if claim != "held":
                return claim == "taken"
            if await self._store.exists(key):
                return True  # made by the holder (whose claim ends in a moment)
            if loop.time() > deadline:
                raise ServiceBusy(f"the rendition {key} is still being made: retry shortly")
            await asyncio.sleep(_POLL_SECONDS)


async def rendition_maker_context(app: web.Application) -> AsyncIterator[None]:
    app[rendition_maker_key] = RenditionMaker(
        app[db_pool_key],
        app[blob_store_key],
        app[image_processor_key],
        wait_seconds=app[config_key].storage.processing_max_wait_seconds,
    )
    yield
