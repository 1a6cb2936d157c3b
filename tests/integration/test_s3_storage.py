"""The s3 storage type against an S3-compatible server over HTTP on loopback (the BlobStore
contract itself is test_blob_store_contract)."""

from __future__ import annotations

import boto3
import pytest

from image_sidecar.config import ConfigError, S3Settings, load_config
from image_sidecar.prompt_cache.prompts import prompt_hash
from image_sidecar.storage.base import BlobRef, RemoteBlob
from image_sidecar.storage.s3 import S3BlobStore
from testkit.helpers import image_fields, stored_bytes, uploader
from testkit.images import png_bytes, save_as
from testkit.lookalikes import photo_like

KEY = "game-ABCD/round-1/player-1.png"


def s3(environ):
    return boto3.client(
        "s3",
        endpoint_url=environ["IMAGE_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def objects(environ) -> dict[str, bytes]:
    s3_client = s3(environ)
    bucket = environ["IMAGE_S3_BUCKET"]
    listed = s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        o["Key"]: s3_client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed
    }


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


async def test_put_stores_the_content_type_the_caller_knows(store, s3_environ):
    await store.put("game-ABCD/round-1/player-1.jpg", b"bytes", "image/webp", "0" * 64)
    head = s3(s3_environ).head_object(
        Bucket=s3_environ["IMAGE_S3_BUCKET"], Key="game-ABCD/round-1/player-1.jpg"
    )
    assert head["ContentType"] == "image/webp"
    assert head["Metadata"] == {"sha256": "0" * 64}


async def test_servable_is_a_presigned_url(store):
    await store.put(KEY, b"bytes", "image/png", "0" * 64)
    blob = await store.servable(KEY)
    assert isinstance(blob, RemoteBlob)
    assert KEY in blob.url
    assert "Signature=" in blob.url or "X-Amz-Signature=" in blob.url


async def test_deletes_take_sizes_from_the_caller(store):
    await store.put(KEY, b"bytes", "image/png", "0" * 64)
    result = await store.delete_many([BlobRef(KEY, 5)])
    assert (result.deleted, result.bytes_freed) == (1, 5)


def test_s3_without_a_bucket_is_refused_at_start_up():
    with pytest.raises(ConfigError, match="IMAGE_S3_BUCKET"):
        load_config({"IMAGE_STORAGE_TYPE": "s3"})
    with pytest.raises(ConfigError, match="IMAGE_STORAGE_TYPE"):
        load_config({"IMAGE_STORAGE_TYPE": "ftp"})


@pytest.fixture
async def s3_client(make_client, s3_environ):
    return await make_client(**s3_environ)


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
    reuse = await reused.json()
    url = reuse["image_url"]
    purge = await s3_client.delete("/api/games/ORIG")
    assert (await purge.json())["images_deleted"] == 1
    stored = objects(s3_environ)
    kept = [url] + [rendition["url"] for rendition in reuse["renditions"]]
    assert sorted(stored) == sorted(key.removeprefix("/generated-images/") for key in kept)
    assert await (await s3_client.get(url)).read() == png_bytes()


async def test_cleanup_deletes_expired_objects(s3_client, s3_environ, database):
    upload = uploader(s3_client)
    record = await (await upload()).json()
    database.expire_images()
    summary = await (await s3_client.post("/api/admin/cleanup")).json()
    files = 1 + len(record["renditions"])
    assert (summary["images_deleted"], summary["files_deleted"]) == (1, files)
    assert summary["bytes_freed"] == stored_bytes(record)
    assert objects(s3_environ) == {}


async def test_the_redirect_is_logged_and_tagged_like_any_response(s3_client):
    record = await (await uploader(s3_client)()).json()
    redirect = await s3_client.get(
        record["image_url"], allow_redirects=False, headers={"X-Request-ID": "r-307"}
    )
    assert redirect.status == 307
    assert redirect.headers["X-Request-ID"] == "r-307"
    assert redirect.headers["Cache-Control"] == "private, max-age=300"


async def test_a_web_ready_large_is_a_server_side_copy_of_the_original(s3_client, s3_environ):
    original = save_as(photo_like(3, 768), "WEBP", quality=90)
    record = await (await uploader(s3_client)(image=original)).json()
    (large,) = (r for r in record["renditions"] if (r["name"], r["format"]) == ("large", "webp"))
    stored = objects(s3_environ)
    assert stored[large["url"].removeprefix("/generated-images/")] == original
    head = s3(s3_environ).head_object(
        Bucket=s3_environ["IMAGE_S3_BUCKET"], Key=large["url"].removeprefix("/generated-images/")
    )
    assert head["ContentType"] == "image/webp"
