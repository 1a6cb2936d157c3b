"""Taking a picture down everywhere by its content: every game's record and file, the cache
entry, a block on the bytes, and a purge notice for the CDN."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import urllib.request

import pytest
from aiohttp import web

from image_sidecar.config import RetentionSettings
from image_sidecar.lifecycle.cleanup import run_cleanup
from image_sidecar.safety import takedown
from testkit.cache import KEY, lookup
from testkit.helpers import (
    image_fields,
    kill_once_images_go,
    run_sidecar,
    sidecar_process,
    storage_files,
    users_environ,
)
from testkit.images import png_bytes
from testkit.seeding import seed_images

BAD = png_bytes(seed=66)
BAD_SHA256 = hashlib.sha256(BAD).hexdigest()


class PurgeReceiver:
    """A CDN's purge endpoint on loopback: it fails the first `failures` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[dict] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        if len(self.received) <= self.failures:
            return web.Response(status=503)
        return web.json_response({"purged": True})


async def _spread_over_three_games(client, upload) -> list[dict]:
    """The bad picture uploaded once and reused by two other games through the cache."""
    original = await (await upload(image=BAD, game_code="ORIG")).json()
    reuses = []
    for game_code in ("COPY1", "COPY2"):
        response = await client.post(
            f"/api/cache/{KEY}/hits", json=image_fields(game_code=game_code)
        )
        assert response.status == 201, await response.text()
        reuses.append(await response.json())
    return [original, *reuses]


@pytest.fixture
async def receiver(aiohttp_server):
    receiver = PurgeReceiver(failures=1)
    app = web.Application()
    app.router.add_post("/purge", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    receiver.url = str(server.make_url("/purge"))
    return receiver


async def test_a_takedown_removes_every_copy_blocks_the_bytes_and_tells_the_cdn(
    make_client, upload, database, storage_dir, receiver
):
    client = await make_client(IMAGE_PURGE_WEBHOOK_URL=receiver.url)
    records = await _spread_over_three_games(client, upload)
    response = await client.delete(
        f"/api/images/by-sha256/{BAD_SHA256}", params={"reason": "reported by players"}
    )
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["images_deleted"] == 3
    assert sorted(answer["image_ids"]) == sorted(r["image_id"] for r in records)
    assert answer["cache_entries_removed"] == 1
    assert answer["cdn_notified"] is True
    assert database.count("generated_images") == 0
    assert database.count("image_cache") == 0
    assert storage_files(storage_dir) == []

    # the CDN got every URL, on the second try
    assert len(receiver.received) == 2
    assert sorted(receiver.received[-1]["urls"]) == sorted(r["image_url"] for r in records)
    assert receiver.received[-1]["sha256"] == BAD_SHA256

    blocked = await upload(image=BAD, game_code="AGAIN")
    assert blocked.status == 422
    assert (await blocked.json())["error"]["code"] == "blocked_content"
    assert database.count("generated_images") == 0
    assert (await lookup(client))["status"] == "miss"


async def test_a_takedown_interrupted_after_its_first_step_is_finished_by_the_cleanup(
    client, upload, database, storage_dir, pool, store
):
    await _spread_over_three_games(client, upload)
    # the first step, then the process dies
    await takedown.block_and_expire(pool, BAD_SHA256, reason=None, lookalikes=[])

    for game_code in ("ORIG", "COPY1", "COPY2"):
        listed = await (await client.get(f"/api/games/{game_code}/images")).json()
        assert listed == {"images": []}
    assert (await lookup(client))["status"] == "miss"
    assert (await upload(image=BAD, game_code="AGAIN")).status == 422

    report = await run_cleanup(pool, store, RetentionSettings())
    assert report.images_deleted == 3
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


async def test_a_takedown_of_unknown_content_is_404_and_blocks_nothing(client, upload, database):
    response = await client.delete(f"/api/images/by-sha256/{'0' * 64}")
    assert response.status == 404
    assert database.count("blocked_content") == 0


@pytest.mark.parametrize("sha256", ["ABC", "g" * 64, "A" * 64])
async def test_a_takedown_of_a_malformed_digest_is_400(client, sha256):
    response = await client.delete(f"/api/images/by-sha256/{sha256}")
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "sha256"


async def test_a_takedown_needs_the_token(make_client):
    client = await make_client(IMAGE_SIDECAR_API_TOKEN="secret")
    response = await client.delete(f"/api/images/by-sha256/{BAD_SHA256}")
    assert response.status == 401


async def test_other_pictures_survive_a_takedown(client, upload, database):
    await _spread_over_three_games(client, upload)
    kept = await (await upload(image=png_bytes(seed=1), game_code="GOOD")).json()
    await client.delete(f"/api/images/by-sha256/{BAD_SHA256}")
    listed = await (await client.get("/api/games/GOOD/images")).json()
    assert [r["image_id"] for r in listed["images"]] == [kept["image_id"]]
    assert (await client.get(kept["image_url"])).status == 200
    assert (await lookup(client))["status"] == "miss"  # its prompt is free to be made again


def test_a_takedown_killed_part_way_is_finished_by_the_next_cleanup(
    database, storage_dir, tmp_path
):
    seed_images(database.url, storage_dir, 3000, expired=False)  # one picture in 3,000 records
    (digest,) = {row["sha256"] for row in database.rows("SELECT sha256 FROM generated_images")}
    environ = users_environ(
        DATABASE_URL=database.url,
        IMAGE_STORAGE_BASE_DIR=str(storage_dir),
        IMAGE_CLEANUP_ENABLED="false",
        IMAGE_CLEANUP_BATCH_SIZE="20",
    )
    with sidecar_process("serve", environ, tmp_path) as (process, base_url):
        takedown = urllib.request.Request(
            f"{base_url}/api/images/by-sha256/{digest}", method="DELETE"
        )
        # The answer never comes: the process is killed while it deletes.
        threading.Thread(target=_ignoring_errors, args=(takedown,), daemon=True).start()
        left = kill_once_images_go(process, database, 3000)
    assert 0 < left < 3000, "the kill should land part-way through the takedown"
    # Its first step committed: nothing with these bytes is live, and the bytes are blocked.
    live = database.rows("SELECT count(*) AS n FROM generated_images WHERE expires_at > now()")
    assert live[0]["n"] == 0
    assert database.count("blocked_content") == 1

    finished = run_sidecar("cleanup", cwd=tmp_path, environ=environ, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []
    assert database.count("blocked_content") == 1


def _ignoring_errors(request: urllib.request.Request) -> None:
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request, timeout=60).read()
