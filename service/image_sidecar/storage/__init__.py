"""Blob storage: where image bytes live. Only this package opens files or objects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from image_sidecar.config import Config
from image_sidecar.storage.base import BlobStore
from image_sidecar.storage.filesystem import FilesystemBlobStore
from image_sidecar.typedefs import blob_store_key, config_key


@asynccontextmanager
async def open_blob_store(config: Config) -> AsyncIterator[BlobStore]:
    """The backend IMAGE_STORAGE_TYPE names, checked before anything is stored in it."""
    match config.storage_type:
        case "filesystem":
            store: BlobStore = FilesystemBlobStore(config.storage_base_dir)
            await store.health_check()
            yield store
        case "s3":
            from image_sidecar.storage.s3 import S3BlobStore, S3Settings

            assert config.s3_bucket is not None  # load_config refuses s3 without a bucket
            settings = S3Settings(
                bucket=config.s3_bucket,
                endpoint_url=config.s3_endpoint_url,
                region=config.s3_region,
                access_key_id=config.s3_access_key_id,
                secret_access_key=config.s3_secret_access_key,
            )
            async with S3BlobStore.connect(settings) as s3_store:
                await s3_store.health_check()
                yield s3_store
        case other:
            raise ValueError(f"unknown storage type {other}")


async def store_context(app: web.Application) -> AsyncIterator[None]:
    async with open_blob_store(app[config_key]) as store:
        app[blob_store_key] = store
        yield
