"""GET/HEAD /generated-images/...: bytes, caching headers, ranges, and no way out of the store."""

from __future__ import annotations

import hashlib

import pytest

from image_sidecar.api.static import CACHE_CONTROL
from testkit.images import png_bytes


@pytest.fixture
async def stored(upload):
    image = png_bytes(seed=3, size=32)
    record = await (await upload(image=image)).json()
    return record["image_url"], image


async def test_get_serves_bytes_with_type_digest_etag_and_cache_control(client, stored):
    url, image = stored
    response = await client.get(url)
    assert response.status == 200
    assert await response.read() == image
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["ETag"] == f'"{hashlib.sha256(image).hexdigest()}"'
    assert response.headers["Cache-Control"] == CACHE_CONTROL
    assert response.headers["Content-Length"] == str(len(image))
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_head_sends_headers_without_a_body(client, stored):
    url, image = stored
    response = await client.head(url)
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(image))
    assert await response.read() == b""


async def test_if_none_match_with_the_digest_is_304(client, stored):
    url, image = stored
    etag = f'"{hashlib.sha256(image).hexdigest()}"'
    response = await client.get(url, headers={"If-None-Match": etag})
    assert response.status == 304
    assert response.headers["ETag"] == etag
    assert await response.read() == b""


async def test_range_request_returns_206_with_the_slice(client, stored):
    url, image = stored
    response = await client.get(url, headers={"Range": "bytes=10-29"})
    assert response.status == 206
    assert await response.read() == image[10:30]
    assert response.headers["Content-Range"] == f"bytes 10-29/{len(image)}"


async def test_unsatisfiable_range_is_416_in_the_json_shape_and_never_cached(client, stored):
    url, image = stored
    for asked in (f"bytes={len(image) + 10}-", f"bytes={len(image)}-{len(image) + 5}"):
        response = await client.get(url, headers={"Range": asked})
        assert response.status == 416
        assert response.headers["Content-Range"] == f"bytes */{len(image)}"
        assert response.content_type == "application/json"
        assert "immutable" not in response.headers.get("Cache-Control", "")
        assert (await response.json())["error"]["code"] == "range_not_satisfiable"
    satisfiable = await client.get(url, headers={"Range": "bytes=-5"})  # the last 5 bytes
    assert satisfiable.status == 206
    assert await satisfiable.read() == image[-5:]


async def test_every_answer_for_a_picture_carries_its_request_id(client, stored):
    url, _ = stored
    for method in ("GET", "HEAD"):
        response = await client.request(method, url, headers={"X-Request-ID": f"judge-{method}"})
        assert response.status == 200
        assert response.headers["X-Request-ID"] == f"judge-{method}"
    ranged = await client.get(url, headers={"Range": "bytes=0-9"})
    assert ranged.status == 206
    assert len(ranged.headers["X-Request-ID"]) == 32  # one of its own when the caller sent none


async def test_several_ranges_get_the_whole_picture_with_200_never_416(client, stored):
    url, image = stored
    for asked in ("bytes=0-1,5-9", "bytes=0-1, 5-9", f"bytes=0-1,{len(image) + 5}-"):
        response = await client.get(url, headers={"Range": asked})
        assert response.status == 200, asked
        assert "Content-Range" not in response.headers
        assert await response.read() == image


async def test_missing_image_is_404_json(client):
    response = await client.get("/generated-images/game-ABCD/round-1/player-x.png")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/generated-images/../../etc/passwd",
        "/generated-images/%2e%2e/%2e%2e/etc/passwd",
        "/generated-images/..%2f..%2fetc%2fpasswd",
        "/generated-images/game-ABCD/../../secret.png",
        "/generated-images/.tmp-partial.part",
        "/generated-images//etc/passwd",
    ],
)
async def test_no_request_reads_outside_the_storage_directory(client, storage_dir, path):
    secret = storage_dir.parent / "secret.png"
    secret.write_bytes(png_bytes(seed=99))
    response = await client.get(path)
    assert response.status == 404
    assert png_bytes(seed=99) not in await response.read()


async def test_symlink_out_of_the_store_is_not_followed(client, storage_dir):
    secret = storage_dir.parent / "secret.png"
    secret.write_bytes(png_bytes(seed=98))
    (storage_dir / "game-EVIL").mkdir()
    (storage_dir / "game-EVIL" / "player-x.png").symlink_to(secret)
    response = await client.get("/generated-images/game-EVIL/player-x.png")
    assert response.status == 404


def _etag(image: bytes) -> str:
    return f'"{hashlib.sha256(image).hexdigest()}"'


@pytest.mark.parametrize("if_match", ["{etag}", "*", '"other", {etag}'])
async def test_if_match_with_the_sent_etag_serves_the_image(client, stored, if_match):
    url, image = stored
    response = await client.get(url, headers={"If-Match": if_match.format(etag=_etag(image))})
    assert response.status == 200
    assert await response.read() == image


@pytest.mark.parametrize("if_match", ['"other"', "W/{etag}"])  # a weak tag never matches If-Match
async def test_if_match_with_another_etag_is_412(client, stored, if_match):
    url, image = stored
    response = await client.get(url, headers={"If-Match": if_match.format(etag=_etag(image))})
    assert response.status == 412
    assert (await response.json())["error"]["code"] == "precondition_failed"


async def test_if_none_match_with_a_weak_form_of_the_etag_is_304(client, stored):
    url, image = stored
    response = await client.get(url, headers={"If-None-Match": f"W/{_etag(image)}"})
    assert response.status == 304


async def test_if_none_match_with_another_etag_serves_the_image(client, stored):
    url, image = stored
    response = await client.get(url, headers={"If-None-Match": '"other"'})
    assert response.status == 200
    assert await response.read() == image


async def test_if_range_with_the_sent_etag_serves_the_range(client, stored):
    url, image = stored
    response = await client.get(url, headers={"Range": "bytes=10-29", "If-Range": _etag(image)})
    assert response.status == 206
    assert await response.read() == image[10:30]


async def test_if_range_with_another_etag_serves_the_whole_image(client, stored):
    url, image = stored
    response = await client.get(url, headers={"Range": "bytes=10-29", "If-Range": '"stale"'})
    assert response.status == 200
    assert await response.read() == image


async def test_a_range_is_counted_as_206_not_200(client, stored):
    url, _ = stored
    response = await client.get(url, headers={"Range": "bytes=10-29"})
    assert response.status == 206
    metrics = await (await client.get("/metrics")).text()
    counted = [line for line in metrics.splitlines() if line.startswith(_SERVED_COUNT)]
    assert counted == [f'{_SERVED_COUNT},status="206"}} 1.0']


_SERVED_COUNT = (
    'sidecar_http_request_duration_seconds_count{method="GET",route="/generated-images/{key}"'
)
