"""The s3 storage type against an S3-compatible server over HTTP on loopback."""

from __future__ import annotations

import hashlib
import time

import boto3
import pytest

from image_sidecar.app import create_app
from image_sidecar.config import ConfigError, load_config
from image_sidecar.prompts import prompt_hash
from image_sidecar.storage.base import BlobNotFound, RemoteBlob
from image_sidecar.storage.s3 import S3BlobStore, S3Settings
from tests.conftest import image_fields, uploader
from tests.sample_images import png_bytes

KEY = "game-ABCD/round-1/player-1.png"


def objects(environ) -> dict[str, bytes]:
    s3 = boto3.client(
        "s3",
        endpoint_url=environ["IMAGE_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    bucket = environ["IMAGE_S3_BUCKET"]
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


@pytest.fixture
async def store(s3_environ):
    settings = S3Settings(
        bucket=s3_environ["IMAGE_S3_BUCKET"],
        endpoint_url=s3_environ["IMAGE_S3_ENDPOINT_URL"],
        access_key_id="test",
        secret_access_key="test",
    )
    async with S3BlobStore.connect(settings) as store:
        yield store


async def test_put_link_and_delete_objects(store, s3_environ):
    await store.put(KEY, b"bytes", hashlib.sha256(b"bytes").hexdigest())
    await store.link(KEY, "game-OTHER/round-2/player-2.png")
    assert objects(s3_environ) == {KEY: b"bytes", "game-OTHER/round-2/player-2.png": b"bytes"}
    result = await store.delete_many([KEY, "game-ABCD/round-1/player-missing.png"])
    assert (result.deleted, result.bytes_freed) == (1, 5)
    assert objects(s3_environ) == {"game-OTHER/round-2/player-2.png": b"bytes"}


async def test_missing_objects_are_blob_not_found(store):
    with pytest.raises(BlobNotFound):
        await store.servable(KEY)
    with pytest.raises(BlobNotFound):
        await store.link(KEY, "game-OTHER/round-2/player-2.png")


async def test_servable_is_a_presigned_url(store):
    await store.put(KEY, b"bytes", "0" * 64)
    blob = await store.servable(KEY)
    assert isinstance(blob, RemoteBlob)
    assert KEY in blob.url
    assert "Signature=" in blob.url or "X-Amz-Signature=" in blob.url


@pytest.mark.parametrize("key", ["../outside.png", "/etc/passwd", ".hidden/x.png"])
async def test_unsafe_keys_are_refused(store, key):
    with pytest.raises(BlobNotFound):
        await store.put(key, b"x", "0" * 64)


async def test_old_keys_and_age_guarded_deletes(store):
    await store.put(KEY, b"old", "0" * 64)
    assert [key async for chunk in store.old_keys(time.time() + 60) for key in chunk] == [KEY]
    assert [chunk async for chunk in store.old_keys(time.time() - 3600)] == []
    spared = await store.delete_many([KEY], only_if_older_than=time.time() - 3600)
    assert spared.deleted == 0


def test_s3_without_a_bucket_is_refused_at_start_up():
    with pytest.raises(ConfigError, match="IMAGE_S3_BUCKET"):
        load_config({"IMAGE_STORAGE_TYPE": "s3"})
    with pytest.raises(ConfigError, match="IMAGE_STORAGE_TYPE"):
        load_config({"IMAGE_STORAGE_TYPE": "ftp"})


@pytest.fixture
async def s3_client(aiohttp_client, make_config, s3_environ):
    return await aiohttp_client(create_app(make_config(**s3_environ)))


async def test_round_trip_through_the_api_on_s3(s3_client, s3_environ, database):
    upload = uploader(s3_client)
    for seed in range(4):
        assert (await upload(image=png_bytes(seed=seed))).status == 201
    listed = (await (await s3_client.get("/api/games/ABCD/rounds/1/images")).json())["images"]
    assert len(listed) == 4
    for seed, record in enumerate(listed):
        redirect = await s3_client.get(record["image_url"], allow_redirects=False)
        assert redirect.status == 307
        served = await s3_client.get(record["image_url"])  # follows the redirect to S3
        assert served.status == 200
        assert served.headers["Content-Type"] == "image/png"
        assert await served.read() == png_bytes(seed=seed)
    assert (await s3_client.get("/readyz")).status == 200


async def test_cache_reuse_is_a_server_side_copy_that_survives_a_purge(
    s3_client, s3_environ, database
):
    upload = uploader(s3_client)
    await upload(game_code="ORIG")
    key = prompt_hash("A cat riding a skateboard", "watercolor")
    reused = await s3_client.post(f"/api/cache/{key}/hits", json=image_fields(game_code="NEW"))
    assert reused.status == 201
    url = (await reused.json())["image_url"]
    purge = await s3_client.delete("/api/games/ORIG")
    assert (await purge.json())["images_deleted"] == 1
    stored = objects(s3_environ)
    assert list(stored) == [url.removeprefix("/generated-images/")]
    assert await (await s3_client.get(url)).read() == png_bytes()


async def test_cleanup_deletes_expired_objects(s3_client, s3_environ, database):
    upload = uploader(s3_client)
    await upload()
    database.rows("UPDATE generated_images SET expires_at = now() - interval '1 second'")
    summary = await (await s3_client.post("/api/admin/cleanup")).json()
    assert (summary["images_deleted"], summary["files_deleted"]) == (1, 1)
    assert summary["bytes_freed"] == len(png_bytes())
    assert objects(s3_environ) == {}


async def test_the_redirect_is_logged_and_tagged_like_any_response(s3_client):
    record = await (await uploader(s3_client)()).json()
    redirect = await s3_client.get(
        record["image_url"], allow_redirects=False, headers={"X-Request-ID": "r-307"}
    )
    assert redirect.status == 307
    assert redirect.headers["X-Request-ID"] == "r-307"
    assert redirect.headers["Cache-Control"] == "private, max-age=300"
