"""The moderation hook (IMAGE_MODERATION_URL), a real HTTP server on loopback: it accepts,
refuses, fails or hangs, and the upload follows; a refused upload leaves nothing behind."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from testkit.cache import KEY, hit, lookup
from testkit.helpers import free_port, metric_sample, storage_files, uploader
from testkit.images import png_bytes


class Hook:
    """A studio's classifier: answers every review as `behaviour` says, keeps what it got."""

    def __init__(self) -> None:
        self.behaviour = "accept"
        self.reviews: list[dict[str, object]] = []

    async def review(self, request: web.Request) -> web.Response:
        parts: dict[str, object] = {}
        async for part in await request.multipart():
            parts[part.name] = await part.read() if part.name == "image" else await part.text()
            if part.name == "image":
                parts["image_content_type"] = part.headers["Content-Type"]
        self.reviews.append(parts)
        if self.behaviour == "refuse":
            return web.json_response({"reason": "violence\nin the picture"}, status=403)
        if self.behaviour == "refuse without a reason":
            return web.Response(status=451, text="no")
        if self.behaviour == "fail":
            return web.Response(status=500)
        if self.behaviour == "hang":
            await asyncio.sleep(30)
        return web.json_response({"ok": True})


@pytest.fixture
async def hook(aiohttp_server):
    hook = Hook()
    app = web.Application()
    app.router.add_post("/review", hook.review)
    server = await aiohttp_server(app, host="127.0.0.1")
    hook.url = str(server.make_url("/review"))
    return hook


async def _metrics(client) -> str:
    return await (await client.get("/metrics")).text()


def _decisions(exposition: str, outcome: str) -> float:
    return metric_sample(exposition, "sidecar_moderation_decisions_total", outcome=outcome)


async def test_an_accepted_upload_is_stored_after_the_hook_saw_its_bytes_and_fields(
    make_client, hook, database
):
    client = await make_client(IMAGE_MODERATION_URL=hook.url)
    image = png_bytes(seed=1)
    response = await uploader(client)(image=image, completed_sentence="A cat on a skateboard")
    assert response.status == 201, await response.text()
    (review,) = hook.reviews
    assert review["image"] == image
    assert review["image_content_type"] == "image/png"
    assert review["completed_sentence"] == "A cat on a skateboard"
    assert review["game_code"] == "ABCD"
    assert "claim_token" not in review
    assert database.count("generated_images") == 1
    assert _decisions(await _metrics(client), "accepted") == 1


async def test_a_refused_upload_is_422_with_the_reason_and_leaves_nothing_behind(
    make_client, hook, database, storage_dir
):
    client = await make_client(IMAGE_MODERATION_URL=hook.url)
    hook.behaviour = "refuse"
    claimed = await lookup(client)
    assert claimed["status"] == "miss"

    response = await uploader(client)(claim_token=claimed["claim_token"])
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "rejected_by_moderation"
    assert error["reason"] == "violence in the picture"
    assert database.count("generated_images") == 0
    assert database.count("image_cache") == 0
    assert storage_files(storage_dir) == []
    # The claim was given back: the next player's lookup gets it at once, not "pending".
    assert (await lookup(client))["status"] == "miss"
    assert _decisions(await _metrics(client), "rejected") == 1

    hook.behaviour = "refuse without a reason"
    response = await uploader(client)(image=png_bytes(seed=2))
    assert response.status == 422
    assert "reason" not in (await response.json())["error"]


async def test_a_failing_hook_fails_closed_by_default_writing_nothing(
    make_client, hook, database, storage_dir
):
    client = await make_client(IMAGE_MODERATION_URL=hook.url)
    hook.behaviour = "fail"
    response = await uploader(client)()
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert (await response.json())["error"]["code"] == "moderation_unavailable"
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []
    assert _decisions(await _metrics(client), "failed_closed") == 1


async def test_a_hook_that_hangs_past_its_timeout_fails_closed_in_time(make_client, hook, database):
    client = await make_client(
        IMAGE_MODERATION_URL=hook.url, IMAGE_MODERATION_TIMEOUT_SECONDS="0.5"
    )
    hook.behaviour = "hang"
    started = time.monotonic()
    response = await uploader(client)()
    assert response.status == 503
    assert time.monotonic() - started < 5
    assert database.count("generated_images") == 0


async def test_a_hook_that_fails_or_hangs_lets_uploads_through_when_it_fails_open(
    make_client, hook, database
):
    client = await make_client(
        IMAGE_MODERATION_URL=hook.url,
        IMAGE_MODERATION_TIMEOUT_SECONDS="0.5",
        IMAGE_MODERATION_FAILURE="open",
    )
    hook.behaviour = "hang"
    assert (await uploader(client)(image=png_bytes(seed=1))).status == 201
    hook.behaviour = "fail"
    assert (await uploader(client)(image=png_bytes(seed=2))).status == 201
    assert database.count("generated_images") == 2
    assert _decisions(await _metrics(client), "failed_open") == 2


async def test_a_hook_nobody_listens_on_fails_closed(make_client, database):
    client = await make_client(IMAGE_MODERATION_URL=f"http://127.0.0.1:{free_port()}/review")
    response = await uploader(client)()
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "moderation_unavailable"
    assert database.count("generated_images") == 0


async def test_a_cache_reuse_is_not_sent_again_and_what_is_no_image_is_never_sent(
    make_client, hook
):
    client = await make_client(IMAGE_MODERATION_URL=hook.url)
    assert (await uploader(client)()).status == 201
    assert (await hit(client, KEY)).status == 201
    not_an_image = await uploader(client)(image=b"GIF89a, or anything else")
    assert not_an_image.status == 415
    assert len(hook.reviews) == 1
