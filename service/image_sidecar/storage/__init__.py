"""Blob storage: where image bytes live. Only this package opens files or objects."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from image_sidecar.config import Config
from image_sidecar.storage.base import BlobStore
from image_sidecar.storage.filesystem import FilesystemBlobStore
from image_sidecar.typedefs import blob_store_key, config_key


def build_blob_store(config: Config) -> BlobStore:
    return FilesystemBlobStore(config.storage_base_dir)


async def store_context(app: web.Application) -> AsyncIterator[None]:
    store = build_blob_store(app[config_key])
    await store.health_check()
    app[blob_store_key] = store
    yield
