"""Renditions made when first asked for (the default): an upload makes only the large WebP from
its own decode and answers; the others are listed with their size known and made once by the
first GET, through the sidecar or through nginx, whichever worker or replica is asked."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import pytest
from PIL import Image

from image_sidecar.appkeys import metrics_key
from image_sidecar.config import RetentionSettings
from image_sidecar.images.decoding import rendition_formats
from image_sidecar.lifecycle.cleanup import run_cleanup
from testkit.cache import hit
from testkit.helpers import path_of, storage_files, uploader
from testkit.images import noise_png
from testkit.nginx import running_nginx

FORMATS = rendition_formats()
ON_DEMAND = {"IMAGE_RENDITIONS_AT_UPLOAD": "large.webp"}  # the shipped default


@pytest.fixture
async def lazy(make_client):
    return await make_client(**ON_DEMAND)


def _by_name(record: dict) -> dict[tuple[str, str], dict]:
    return {(r["name"], r["format"]): r for r in record["renditions"]}


def _made(client) -> float:
    counter = client.app[metrics_key].renditions_made
    return sum(sample.value for metric in counter.collect() for sample in metric.samples
               if sample.name.endswith("_total"))  # fmt: skip


async def test_an_upload_makes_the_large_webp_and_lists_the_others_unmade(lazy, storage_dir):
    record = await (await uploader(lazy)(image=noise_png(600))).json()
    renditions = _by_name(record)
    assert set(renditions) == {(n, f) for n in ("thumb", "large") for f in FORMATS}
    assert renditions["large", "webp"]["size_bytes"] > 0
    for key, rendition in renditions.items():
        side = 256 if key[0] == "thumb" else 600
        assert (rendition["width"], rendition["height"]) == (side, side)
        if key != ("large", "webp"):
            assert rendition["size_bytes"] is None
    on_disk = {path.rsplit("/", 1)[1] for path in storage_files(storage_dir)}
    assert len(on_disk) == 2  # the original and its large WebP


async def test_the_first_get_makes_a_rendition_which_is_then_a_file(lazy, storage_dir):
    record = await (await uploader(lazy)(image=noise_png(600))).json()
    thumb = _by_name(record)["thumb", "webp"]
    served = await lazy.get(thumb["url"])
    assert served.status == 200
    assert served.headers["Content-Type"] == "image/webp"
    assert served.headers["Cache-Control"] == "public, max-age=604800, immutable"
    image = Image.open(io.BytesIO(await served.read()))
    assert image.size == (thumb["width"], thumb["height"]) == (256, 256)
    assert path_of(storage_dir, {"image_url": thumb["url"]}).is_file()
    listed = await (await lazy.get("/api/games/ABCD/rounds/1/images")).json()
    made = _by_name(listed["images"][0])["thumb", "webp"]
    assert made["size_bytes"] == len(await (await lazy.get(thumb["url"])).read())
    assert _made(lazy) == 1


async def test_many_requests_on_two_replicas_make_a_rendition_once(make_client):
    first, second = await make_client(**ON_DEMAND), await make_client(**ON_DEMAND)
    record = await (await uploader(first)(image=noise_png(900))).json()
    url = _by_name(record)["thumb", "webp"]["url"]
    answers = await asyncio.gather(*(c.get(url) for c in [first, second] * 10))
    bodies = {await answer.read() for answer in answers}
    assert [answer.status for answer in answers] == [200] * 20
    assert len(bodies) == 1
    assert _made(first) + _made(second) == 1


async def test_an_expired_images_rendition_is_404_and_never_made(lazy, database, storage_dir):
    record = await (await uploader(lazy)(image=noise_png(300))).json()
    database.expire_images()
    response = await lazy.get(_by_name(record)["thumb", "webp"]["url"])
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    assert len(storage_files(storage_dir)) == 2


async def test_a_reuse_shares_what_is_made_and_makes_the_rest_for_itself(lazy, storage_dir):
    original = await (await uploader(lazy)(image=noise_png(400))).json()
    reuse = await (await hit(lazy, key=original["prompt_hash"])).json()
    shared = _by_name(reuse)["large", "webp"]
    assert shared["size_bytes"] == _by_name(original)["large", "webp"]["size_bytes"]
    assert path_of(storage_dir, {"image_url": shared["url"]}).stat().st_nlink == 2  # a link
    thumb = _by_name(reuse)["thumb", "webp"]
    assert thumb["size_bytes"] is None
    assert (await lazy.get(thumb["url"])).status == 200


async def test_the_cleanup_deletes_renditions_made_on_demand(
    lazy, database, storage_dir, pool, store
):
    record = await (await uploader(lazy)(image=noise_png(300))).json()
    for rendition in record["renditions"]:
        assert (await lazy.get(rendition["url"])).status == 200
    assert len(storage_files(storage_dir)) == 1 + len(record["renditions"])
    database.expire_images()
    report = await run_cleanup(pool, store, RetentionSettings(orphan_grace_seconds=1))
    assert report.files_deleted == 1 + len(record["renditions"])
    assert storage_files(storage_dir) == []


async def test_saturated_picture_work_is_503_busy_at_once_and_writes_nothing(
    make_client, database, storage_dir
):
    client = await make_client(
        IMAGE_PROCESSING_WORKERS="1", IMAGE_PROCESSING_MAX_WAIT_SECONDS="0.001", **ON_DEMAND
    )
    upload = uploader(client)
    await upload(image=noise_png(64), game_code="WARM")  # the pool's first job sets its pace
    answers = await asyncio.gather(
        *(upload(image=noise_png(1500, seed=n), game_code=f"BUSY{n}") for n in range(6))
    )
    statuses = [answer.status for answer in answers]
    assert 503 in statuses
    assert set(statuses) <= {201, 503}
    for answer in answers:
        if answer.status == 503:
            assert answer.headers["Retry-After"].isdigit()
            assert (await answer.json())["error"]["code"] == "busy"
    assert database.count("generated_images") == 1 + statuses.count(201)
    assert len(storage_files(storage_dir)) == 2 * (1 + statuses.count(201))


async def test_nginx_asks_the_sidecar_for_a_rendition_not_made_yet(lazy, tmp_path, storage_dir):
    record = await (await uploader(lazy)(image=noise_png(500))).json()
    thumb = _by_name(record)["thumb", "webp"]
    async with (
        running_nginx(tmp_path, storage_dir, sidecar_port=lazy.port) as base,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(base + thumb["url"]) as first:  # made by the sidecar
            assert first.status == 200
            made = await first.read()
        assert path_of(storage_dir, {"image_url": thumb["url"]}).is_file()
        async with session.get(base + thumb["url"]) as again:  # a file nginx serves
            assert again.status == 200
            assert again.headers["Content-Type"] == "image/webp"
            assert await again.read() == made
        missing = thumb["url"].replace(record["player_id"], "0" * 8 + record["player_id"][8:])
        async with session.get(base + missing) as unknown:
            assert unknown.status == 404
    assert _made(lazy) == 1
