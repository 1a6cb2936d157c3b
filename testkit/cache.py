"""The prompt cache's calls, as a game server makes them, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from image_sidecar.appkeys import notification_hub_key
from image_sidecar.prompt_cache.prompts import prompt_hash
from testkit.helpers import image_fields
from testkit.images import png_bytes

SENTENCE = "A cat riding a skateboard"
KEY = prompt_hash(SENTENCE, "watercolor")


class CountingGenerator:
    """Stands in for the paid AI service: counts calls, returns distinct images."""

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, prompt: str) -> bytes:
        self.calls += 1
        return png_bytes(seed=self.calls)


async def lookup(
    client: Any, prompt: str = SENTENCE, art_style: str = "watercolor", **extra: Any
) -> Any:
    response = await client.post(
        "/api/cache/lookup", json={"prompt": prompt, "art_style": art_style, **extra}
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def hit(client: Any, key: str = KEY, **overrides: Any) -> Any:
    fields = image_fields(**{"game_code": "EFGH", "round_number": 2, **overrides})
    return await client.post(f"/api/cache/{key}/hits", json=fields)


async def drive_traffic(client: Any, upload: Any, database: Any) -> None:
    """Uploads, lookups of every result, hits, a 404 and a cleanup that deletes one image."""
    claim = await (await client.post("/api/cache/lookup", json={"prompt": "a new prompt"})).json()
    await client.post("/api/cache/lookup", json={"prompt": "a new prompt"})  # pending
    await upload(image=png_bytes(seed=1), generation_cost_usd="0.05")
    await upload(
        image=png_bytes(seed=2),
        completed_sentence="a new prompt",
        art_style=None,
        claim_token=claim["claim_token"],
        game_code="GONE",
    )
    await client.post(
        "/api/cache/lookup", json={"prompt": "A cat riding a skateboard", "art_style": "watercolor"}
    )
    await client.post(f"/api/cache/{KEY}/hits", json=image_fields(game_code="EFGH"))
    await client.get(f"/api/games/ABCD/rounds/1/players/{uuid.uuid4()}/image")
    database.expire_images("game_code = 'GONE'")
    assert (await client.post("/api/admin/cleanup")).status == 200


async def until_waiting(client: Any, key: str = KEY, count: int = 1, seconds: float = 10) -> None:
    """Return once `count` lookups of `client`'s app wait for `key` (they got `pending` and
    subscribed to its announcement); fail after `seconds`. A condition, not a guess: on a slow
    machine it waits longer, and it never passes before the lookups wait."""
    hub = client.app[notification_hub_key]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while hub.waiting(key) < count:
        assert loop.time() < deadline, f"{hub.waiting(key)} of {count} lookups wait for {key}"
        await asyncio.sleep(0.01)
