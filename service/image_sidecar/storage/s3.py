"""S3-compatible BlobStore (AWS S3, MinIO, R2) over aiobotocore: nothing blocks the event loop.

Object puts are atomic, so there are no temp files. A cache reuse is a server-side copy (the
bytes never pass through the sidecar); each copy is its own object, so deleting one game's image
never touches another's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from image_sidecar.errors import StorageError
from image_sidecar.imagetypes import BY_EXTENSION
from image_sidecar.storage.base import BlobNotFound, DeleteResult, RemoteBlob, check_key

# DeleteObjects takes at most 1,000 keys; HEADs run this many at a time.
_DELETE_CHUNK = 1_000
_CONCURRENT_HEADS = 16
# Browsers follow the static route's redirect at once; 15 minutes covers slow starts.
PRESIGNED_URL_SECONDS = 900


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None


def _is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3BlobStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: S3Settings) -> AsyncIterator[S3BlobStore]:
        session = get_session()
        async with session.create_client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
        ) as client:
            yield cls(client, settings.bucket)

    async def put(self, key: str, data: bytes, sha256: str) -> None:
        image_type = BY_EXTENSION.get(check_key(key).rpartition(".")[2])
        try:
            await self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=image_type.content_type if image_type else "application/octet-stream",
                Metadata={"sha256": sha256},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not write {key}: {exc}") from exc

    async def link(self, source_key: str, target_key: str) -> None:
        try:
            await self._client.copy_object(
                Bucket=self.bucket,
                Key=check_key(target_key),
                CopySource={"Bucket": self.bucket, "Key": check_key(source_key)},
            )
        except ClientError as exc:
            if _is_missing(exc):
                raise BlobNotFound(f"no such image: {source_key}") from exc
            raise StorageError(f"could not copy {source_key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not copy {source_key}: {exc}") from exc

    async def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return await self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise StorageError(f"could not inspect {key}: {exc}") from exc

    async def delete_many(
        self, keys: Iterable[str], *, only_if_older_than: float | None = None
    ) -> DeleteResult:
        keys = [check_key(key) for key in keys]
        limit = asyncio.Semaphore(_CONCURRENT_HEADS)

        async def head(key: str) -> dict[str, Any] | None:
            async with limit:
                return await self._head(key)

        heads = await asyncio.gather(*(head(key) for key in keys))
        doomed = [
            (key, found["ContentLength"])
            for key, found in zip(keys, heads, strict=True)
            if found is not None
            and (
                only_if_older_than is None or found["LastModified"].timestamp() < only_if_older_than
            )
        ]
        for start in range(0, len(doomed), _DELETE_CHUNK):
            chunk = doomed[start : start + _DELETE_CHUNK]
            try:
                answer = await self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key, _ in chunk], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"could not delete objects: {exc}") from exc
            if answer.get("Errors"):
                raise StorageError(f"could not delete objects: {answer['Errors'][:3]}")
        return DeleteResult(deleted=len(doomed), bytes_freed=sum(size for _, size in doomed))

    async def servable(self, key: str) -> RemoteBlob:
        if await self._head(check_key(key)) is None:
            raise BlobNotFound(f"no such image: {key}")
        url = await self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=PRESIGNED_URL_SECONDS,
        )
        return RemoteBlob(url=url)

    async def old_keys(self, older_than: float) -> AsyncIterator[list[str]]:
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket):
            keys = [
                item["Key"]
                for item in page.get("Contents", [])
                if item["LastModified"].timestamp() < older_than
            ]
            if keys:
                yield keys

    async def remove_stale_temp_files(self, older_than: float) -> int:
        return 0  # object puts are atomic: nothing partial is ever left behind

    async def health_check(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"bucket {self.bucket} is not reachable: {exc}") from exc
