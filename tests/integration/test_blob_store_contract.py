"""The BlobStore contract, run against every backend: the filesystem and S3 over HTTP.

Backend-specific behaviour (hard links sharing an inode, temp files, presigned URLs) has its own
tests beside each backend; everything here must hold for any store the sidecar can be given.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from image_sidecar.config import S3Settings
from image_sidecar.errors import StorageError
from image_sidecar.storage.base import BlobNotFound, BlobRef, BlobStore, LocalBlob, NewBlob
from image_sidecar.storage.filesystem import FilesystemBlobStore
from image_sidecar.storage.s3 import S3BlobStore

KEY = "game-ABCD/round-1/player-1.png"
OTHER_GAME_KEY = "game-WXYZ/round-1/player-2.png"
OTHER = "game-OTHER/round-3/player-2.png"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def put(store: BlobStore, key: str, data: bytes) -> None:
    await store.put(key, data, "image/png", sha(data))


async def read(store: BlobStore, key: str) -> bytes:
    """The bytes a player's browser would get for `key`."""
    blob = await store.servable(key)
    if isinstance(blob, LocalBlob):
        return blob.path.read_bytes()
    async with aiohttp.ClientSession() as session, session.get(blob.url) as response:
        assert response.status == 200
        return await response.read()


def s3_settings(environ: dict[str, str], bucket: str | None = None) -> S3Settings:
    return S3Settings(
        bucket=bucket or environ["IMAGE_S3_BUCKET"],
        endpoint_url=environ["IMAGE_S3_ENDPOINT_URL"],
        access_key_id="test",
        secret_access_key="test",
    )


@pytest.fixture(params=["filesystem", "s3"])
async def any_store(request, tmp_path) -> AsyncIterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemBlobStore(tmp_path / "images")
        return
    environ = request.getfixturevalue("s3_environ")
    async with S3BlobStore.connect(s3_settings(environ)) as store:
        yield store


@pytest.fixture(params=["filesystem", "s3"])
async def broken_store(request, tmp_path) -> AsyncIterator[BlobStore]:
    """A store that cannot work: a file where the directory should be, a bucket that is not."""
    if request.param == "filesystem":
        (tmp_path / "images").write_text("not a directory")
        yield FilesystemBlobStore(tmp_path / "images")
        return
    environ = request.getfixturevalue("s3_environ")
    async with S3BlobStore.connect(s3_settings(environ, bucket="no-such-bucket")) as store:
        yield store


async def test_put_then_serve_gives_the_same_bytes(any_store):
    await put(any_store, KEY, b"\x89PNG one")
    assert await read(any_store, KEY) == b"\x89PNG one"
    assert await any_store.exists(KEY)


async def test_read_gives_the_stored_bytes(any_store):
    await put(any_store, KEY, b"\x89PNG two")
    assert await any_store.read(KEY) == b"\x89PNG two"


async def test_put_replaces_the_blob_under_the_key(any_store):
    await put(any_store, KEY, b"old")
    await put(any_store, KEY, b"new")
    assert await read(any_store, KEY) == b"new"


async def test_a_missing_blob_is_blob_not_found(any_store):
    assert not await any_store.exists(KEY)
    with pytest.raises(BlobNotFound):
        await any_store.servable(KEY)
    with pytest.raises(BlobNotFound):
        await any_store.link(KEY, OTHER)
    with pytest.raises(BlobNotFound):
        await any_store.read(KEY)


async def test_a_link_holds_the_bytes_after_its_source_is_deleted(any_store):
    await put(any_store, KEY, b"shared")
    await any_store.link(KEY, OTHER)
    assert await read(any_store, OTHER) == b"shared"
    result = await any_store.delete_many([BlobRef(KEY, 6)])
    assert result.deleted == 1
    assert not await any_store.exists(KEY)
    assert await read(any_store, OTHER) == b"shared"


async def test_put_many_stores_an_original_and_its_renditions_at_once(any_store):
    blobs = [
        NewBlob(KEY, b"original", "image/png", sha(b"original")),
        NewBlob(KEY.replace(".png", ".thumb.webp"), b"thumb", "image/webp", sha(b"thumb")),
        NewBlob(OTHER, b"elsewhere", "image/png", sha(b"elsewhere")),
    ]
    await any_store.put_many(blobs)
    for blob in blobs:
        assert await read(any_store, blob.key) == blob.data
    with pytest.raises(BlobNotFound):
        await any_store.put_many([NewBlob("../escape.png", b"x", "image/png", sha(b"x"))])


async def test_link_many_links_an_original_and_its_renditions_at_once(any_store):
    rendition, rendition_copy = (
        KEY.replace(".png", ".thumb.webp"),
        OTHER.replace(".png", ".thumb.webp"),
    )
    await put(any_store, KEY, b"original")
    await put(any_store, rendition, b"thumb")
    await any_store.link_many([(KEY, OTHER), (rendition, rendition_copy)])
    assert await read(any_store, OTHER) == b"original"
    assert await read(any_store, rendition_copy) == b"thumb"
    with pytest.raises(BlobNotFound):
        await any_store.link_many([("game-ABCD/round-1/player-gone.png", OTHER)])


async def test_delete_many_skips_missing_blobs_and_counts_what_it_freed(any_store):
    await put(any_store, KEY, b"12345")
    result = await any_store.delete_many(
        [BlobRef(KEY, 5), BlobRef("game-ABCD/round-1/player-missing.png", 7)]
    )
    assert result.deleted >= 1
    assert result.bytes_freed >= 5
    assert not await any_store.exists(KEY)


async def test_the_walk_lists_keys_in_order_with_sizes_and_resumes_after_a_position(any_store):
    await put(any_store, KEY, b"old bytes")
    await put(any_store, OTHER_GAME_KEY, b"other")
    walked = [chunk async for chunk in any_store.walk(time.time() + 60)]
    assert [blob for chunk in walked for blob in chunk.old] == [
        BlobRef(KEY, 9),
        BlobRef(OTHER_GAME_KEY, 5),
    ]
    assert sum(chunk.seen for chunk in walked) == 2
    rest = [chunk async for chunk in any_store.walk(time.time() + 60, after=walked[0].position)]
    assert [chunk.old for chunk in rest] == [chunk.old for chunk in walked[1:]]
    assert [c async for c in any_store.walk(time.time() + 60, after=walked[-1].position)] == []
    young = [chunk async for chunk in any_store.walk(time.time() - 3600)]
    assert [blob for chunk in young for blob in chunk.old] == []
    assert sum(chunk.seen for chunk in young) == 2


async def test_blobs_with_a_prefix_are_one_images_files_and_age_guarded_deletes_spare_new_ones(
    any_store,
):
    rendition = KEY.replace(".png", ".thumb.webp")
    await put(any_store, KEY, b"old bytes")
    await put(any_store, rendition, b"thumb")
    await put(any_store, "game-ABCD/round-1/player-1x.png", b"another player")
    prefix = KEY.removesuffix("png")
    found = await any_store.blobs_with_prefix(prefix, time.time() + 60)
    assert sorted(found, key=lambda b: b.key) == [BlobRef(KEY, 9), BlobRef(rendition, 5)]
    assert await any_store.blobs_with_prefix(prefix, time.time() - 3600) == []
    assert await any_store.blobs_with_prefix("game-NONE/round-1/player-1.", time.time()) == []
    spared = await any_store.delete_many([BlobRef(KEY, 9)], only_if_older_than=time.time() - 3600)
    assert spared.deleted == 0
    assert await any_store.exists(KEY)


async def test_the_store_keeps_the_sha256_where_it_can_and_says_when_it_cannot(any_store, request):
    digest = hashlib.sha256(b"bytes").hexdigest()
    await any_store.put(KEY, b"bytes", "image/png", digest)
    kept = await any_store.stored_sha256(KEY)
    if request.node.callspec.params["any_store"] == "filesystem":
        assert kept is None  # a file keeps no checksum: the scrub reads it
    else:
        assert kept == digest
        with pytest.raises(BlobNotFound):
            await any_store.stored_sha256("game-ABCD/round-1/player-missing.png")


@pytest.mark.parametrize(
    "key", ["../outside.png", "/etc/passwd", "a/../../b.png", ".hidden/x.png", "a//b", ""]
)
async def test_keys_that_could_escape_the_store_are_refused(any_store, key):
    with pytest.raises(BlobNotFound):
        await put(any_store, key, b"x")
    with pytest.raises(BlobNotFound):
        await any_store.servable(key)


async def test_usage_and_health(any_store, request):
    await any_store.health_check()
    usage = await any_store.usage()
    if request.node.callspec.params["any_store"] == "filesystem":  # a disk has a fixed size
        assert usage.total_bytes is not None
        assert 0 < (usage.free_bytes or 0) <= usage.total_bytes
    else:
        assert (usage.free_bytes, usage.total_bytes) == (None, None)


async def test_failures_are_storage_errors_never_library_exceptions(broken_store):
    with pytest.raises(StorageError):
        await broken_store.health_check()
    with pytest.raises(StorageError):
        await put(broken_store, KEY, b"data")
