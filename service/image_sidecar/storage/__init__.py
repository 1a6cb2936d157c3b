"""Blob storage: where image bytes live. Only this package opens files or objects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import assert_never

from aiohttp import web

from image_sidecar.appkeys import blob_store_key, config_key
from image_sidecar.config import StorageSettings
from image_sidecar.storage.base import BlobStore
from image_sidecar.storage.filesystem import FilesystemBlobStore


@asynccontextmanager
async def open_blob_store(settings: StorageSettings) -> AsyncIterator[BlobStore]:
    """The backend IMAGE_STORAGE_TYPE names, checked before anything is stored in it."""
    match settings.type:
        case "filesystem":
            store = FilesystemBlobStore(settings.base_dir)
            await store.health_check()
            yield store
        case "s3":
            from image_sidecar.storage.s3 import S3BlobStore  # aiobotocore only when used

            async with S3BlobStore.connect(settings.s3) as s3_store:
                await s3_store.health_check()
                yield s3_store
        case other:
            assert_never(other)


async def store_context(app: web.Application) -> AsyncIterator[None]:
    async with open_blob_store(app[config_key].storage) as store:
        app[blob_store_key] = store
        yield
