"""S3-compatible BlobStore (AWS S3, MinIO, R2) over aiobotocore: nothing blocks the event loop.

Object puts are atomic, so there are no temp files. A cache reuse is a server-side copy (the
bytes never pass through the sidecar); each copy is its own object, so deleting one game's image
never touches another's.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import structlog
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from image_sidecar.config import S3Settings
from image_sidecar.errors import StorageError
from image_sidecar.storage.base import (
    BlobNotFound,
    BlobRef,
    DeleteResult,
    NewBlob,
    RemoteBlob,
    StagedBlob,
    StoreUsage,
    WalkedChunk,
    check_key,
)
from image_sidecar.tracing import traced

log = structlog.get_logger(__name__)

# DeleteObjects takes at most 1,000 keys; the orphan sweep's HEADs run this many at a time.
_DELETE_CHUNK = 1_000
_CONCURRENT_HEADS = 16
# Browsers follow the static route's redirect at once; 15 minutes covers slow starts.
PRESIGNED_URL_SECONDS = 900


def _old(contents: list[dict[str, Any]], older_than: float) -> list[BlobRef]:
    """A listing's objects last written before `older_than` (epoch seconds)."""
    return [
        BlobRef(item["Key"], item["Size"])
        for item in contents
        if item["LastModified"].timestamp() < older_than
    ]


def _is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


@contextmanager
def _mapped_errors(action: str, key: str | None = None) -> Iterator[None]:
    """The store's error family at the boundary: a missing object is BlobNotFound, every other
    botocore failure (HTTP errors, connection and presigning failures) a StorageError."""
    try:
        yield
    except ClientError as exc:
        if key is not None and _is_missing(exc):
            raise BlobNotFound(f"no such image: {key}") from exc
        code = exc.response.get("Error", {}).get("Code", "an error")
        log.warning("object_store_failed", action=action, error=str(exc))
        raise StorageError(f"could not {action}: the object store answered {code}") from exc
    except BotoCoreError as exc:
        # The text names endpoints and credentials' sources: the log has it, the client not.
        log.warning("object_store_failed", action=action, error=str(exc))
        raise StorageError(f"could not {action}: the object store cannot be reached") from exc


async def _all_settled(writes: Iterable[Awaitable[None]]) -> None:
    """Run the writes at once and raise the first failure only after every one has ended, so
    that the caller's clean-up never races a write still in flight."""
    for outcome in await asyncio.gather(*writes, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


class S3BlobStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: S3Settings) -> AsyncIterator[S3BlobStore]:
        if settings.bucket is None:
            raise StorageError("the s3 storage type needs IMAGE_S3_BUCKET")
        session = get_session()
        async with session.create_client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
        ) as client:
            yield cls(client, settings.bucket)

    @traced("storage.put", attributes={"storage.system": "s3"})
    async def put(self, key: str, data: bytes, content_type: str, sha256: str) -> None:
        with _mapped_errors(f"write {key}"):
            await self._client.put_object(
                Bucket=self.bucket,
                Key=check_key(key),
                Body=data,
                ContentType=content_type,
                Metadata={"sha256": sha256},
                # The store checks the bytes against it on arrival and keeps it: the scrub
                # verifies an object with a HEAD instead of a download.
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
            )

    @traced("storage.put_many", attributes={"storage.system": "s3"})
    async def put_many(self, blobs: Sequence[NewBlob]) -> None:
        await _all_settled(self.put(b.key, b.data, b.content_type, b.sha256) for b in blobs)

    @traced("storage.stage_many", attributes={"storage.system": "s3"})
    async def stage_many(self, blobs: Sequence[NewBlob]) -> list[StagedBlob]:
        # An object put is atomic and its bytes cross the network anyway: nothing to stage.
        return [StagedBlob(blob) for blob in blobs]

    @traced("storage.publish_many", attributes={"storage.system": "s3"})
    async def publish_many(self, staged: Sequence[StagedBlob]) -> None:
        await self.put_many([item.blob for item in staged])

    async def discard_many(self, staged: Sequence[StagedBlob]) -> None:
        return None

    async def link(self, source_key: str, target_key: str) -> None:
        with _mapped_errors(f"copy {source_key}", source_key):
            await self._client.copy_object(
                Bucket=self.bucket,
                Key=check_key(target_key),
                CopySource={"Bucket": self.bucket, "Key": check_key(source_key)},
                ChecksumAlgorithm="SHA256",
            )

    @traced("storage.link_many", attributes={"storage.system": "s3"})
    async def link_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        await _all_settled(self.link(source, target) for source, target in pairs)

    async def _head(self, key: str) -> dict[str, Any] | None:
        try:
            with _mapped_errors(f"inspect {key}", key):
                return await self._client.head_object(Bucket=self.bucket, Key=check_key(key))
        except BlobNotFound:
            return None

    async def exists(self, key: str) -> bool:
        return await self._head(key) is not None

    @traced("storage.read", attributes={"storage.system": "s3"})
    async def read(self, key: str) -> bytes:
        with _mapped_errors(f"read {key}", key):
            answer = await self._client.get_object(Bucket=self.bucket, Key=check_key(key))
            async with answer["Body"] as body:
                return bytes(await body.read())

    async def _still_old(self, blobs: list[BlobRef], older_than: float) -> list[BlobRef]:
        """Those of `blobs` that exist and were not rewritten since `older_than` (one HEAD each:
        only the orphan sweep asks, for keys it listed a moment ago)."""
        limit = asyncio.Semaphore(_CONCURRENT_HEADS)

        async def head(blob: BlobRef) -> dict[str, Any] | None:
            async with limit:
                return await self._head(blob.key)

        heads = await asyncio.gather(*(head(blob) for blob in blobs))
        return [
            BlobRef(blob.key, found["ContentLength"])
            for blob, found in zip(blobs, heads, strict=True)
            if found is not None and found["LastModified"].timestamp() < older_than
        ]

    @traced("storage.delete_many", attributes={"storage.system": "s3"})
    async def delete_many(
        self, blobs: Iterable[BlobRef], *, only_if_older_than: float | None = None
    ) -> DeleteResult:
        doomed = [BlobRef(check_key(blob.key), blob.size_bytes) for blob in blobs]
        if only_if_older_than is not None:
            doomed = await self._still_old(doomed, only_if_older_than)
        failed: set[str] = set()
        for start in range(0, len(doomed), _DELETE_CHUNK):
            chunk = doomed[start : start + _DELETE_CHUNK]
            with _mapped_errors("delete objects"):
                answer = await self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": blob.key} for blob in chunk], "Quiet": True},
                )
            failed.update(error["Key"] for error in answer.get("Errors", ()))
        # S3 reports a delete of an absent key as done, so the sizes given are what was freed.
        gone = [blob for blob in doomed if blob.key not in failed]
        return DeleteResult(
            deleted=len(gone),
            bytes_freed=sum(blob.size_bytes for blob in gone),
            failed=frozenset(failed),
        )

    async def deletion_preview(self, blobs: Iterable[BlobRef]) -> DeleteResult:
        # As delete_many counts: every key as deleted, the sizes given as freed.
        doomed = [BlobRef(check_key(blob.key), blob.size_bytes) for blob in blobs]
        return DeleteResult(deleted=len(doomed), bytes_freed=sum(b.size_bytes for b in doomed))

    async def servable(self, key: str) -> RemoteBlob:
        if await self._head(key) is None:
            raise BlobNotFound(f"no such image: {key}")
        with _mapped_errors(f"sign a URL for {key}"):
            url = await self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=PRESIGNED_URL_SECONDS,
            )
        return RemoteBlob(url=url)

    async def walk(self, older_than: float, after: str | None = None) -> AsyncIterator[WalkedChunk]:
        paginator = self._client.get_paginator("list_objects_v2")
        with _mapped_errors("list objects"):
            async for page in paginator.paginate(Bucket=self.bucket, StartAfter=after or ""):
                contents = page.get("Contents", [])
                if contents:
                    yield WalkedChunk(
                        position=contents[-1]["Key"],
                        seen=len(contents),
                        old=_old(contents, older_than),
                    )

    async def blobs_with_prefix(self, prefix: str, older_than: float) -> list[BlobRef]:
        with _mapped_errors(f"list {prefix}"):
            answer = await self._client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return _old(answer.get("Contents", []), older_than)

    async def remove_partial_writes(self, older_than: float) -> int:
        return 0  # an object put is atomic: nothing partial is ever visible

    async def stored_sha256(self, key: str) -> str | None:
        with _mapped_errors(f"inspect {key}", key):
            head = await self._client.head_object(
                Bucket=self.bucket, Key=check_key(key), ChecksumMode="ENABLED"
            )
        checksum = head.get("ChecksumSHA256")
        # A multipart object's checksum is of its parts ("...-3"): not the content's digest.
        if not checksum or "-" in checksum:
            return None
        return base64.b64decode(checksum).hex()

    async def usage(self) -> StoreUsage:
        return StoreUsage(free_bytes=None, total_bytes=None)  # a bucket has no fixed size

    async def health_check(self) -> None:
        with _mapped_errors(f"reach bucket {self.bucket}"):
            await self._client.head_bucket(Bucket=self.bucket)
