"""The prompt cache, second version: the generator in the key, released claims, lookups that
register, reuses that are the cached picture, live copies, takedowns and lasting history."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import pytest

from image_sidecar.config import RetentionSettings
from image_sidecar.lifecycle.cleanup import run_cleanup
from image_sidecar.prompt_cache.prompts import prompt_hash
from testkit.cache import SENTENCE, CountingGenerator, hit, lookup, until_waiting
from testkit.helpers import image_fields, storage_files

V1_CAT = "62f794204ec35f5bea9349f4f4b5eb6808150e43739707d751428eb316048e49"


async def test_two_lookups_that_differ_only_in_model_are_two_misses(client):
    first = await lookup(client, model="dall-e-3", size="1024x1024")
    second = await lookup(client, model="gpt-image-1", size="1024x1024")
    assert (first["status"], second["status"]) == ("miss", "miss")
    assert first["prompt_hash"] == prompt_hash(SENTENCE, "watercolor", "dall-e-3", "1024x1024")
    assert first["prompt_hash"] != second["prompt_hash"]


async def test_a_lookup_without_model_or_size_hashes_as_version_1(client):
    answer = await lookup(client)
    assert (
        answer["prompt_hash"] == "62f794204ec35f5bea9349f4f4b5eb6808150e43739707d751428eb316048e49"
    )


async def test_an_upload_with_model_and_size_is_found_by_them_only(client, upload):
    record = await (await upload(prompt=SENTENCE, model="dall-e-3", size="1024x1024")).json()
    assert (record["model"], record["size"]) == ("dall-e-3", "1024x1024")
    assert record["prompt_hash"] == prompt_hash(SENTENCE, "watercolor", "dall-e-3", "1024x1024")
    found = await lookup(client, model="dall-e-3", size="1024x1024")
    assert found["status"] == "hit"
    assert found["image"]["image_id"] == record["image_id"]
    assert (await lookup(client))["status"] == "miss"  # v1: another key


async def test_a_hit_is_the_cached_picture_whatever_the_caller_omits(client, upload):
    original = await (await upload(model="dall-e-3")).json()
    key = original["prompt_hash"]
    response = await hit(client, key=key, art_style=None, ai_service=None, model=None)
    assert response.status == 201, await response.text()
    reuse = await response.json()
    for field in ("prompt", "art_style", "ai_service", "model", "size"):
        assert reuse[field] == original[field], field
    assert reuse["prompt_hash"] == key


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"completed_sentence": "Something totally different"}, "completed_sentence"),
        ({"prompt": "Something totally different"}, "prompt"),
        ({"art_style": "oil"}, "art_style"),
        ({"model": "gpt-image-1"}, "model"),
    ],
)
async def test_a_hit_that_contradicts_the_cached_prompt_is_400_naming_the_field(
    client, upload, database, storage_dir, overrides, field
):
    await upload()
    files_before = storage_files(storage_dir)
    response = await hit(client, **overrides)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field
    assert database.count("generated_images") == 1
    assert storage_files(storage_dir) == files_before


async def test_an_expired_original_with_a_live_reuse_is_still_a_hit(client, upload, database):
    original = await (await upload(game_code="FIRST")).json()
    reuse = await (await hit(client, key=original["prompt_hash"])).json()
    database.expire_images("image_id = %s", original["image_id"])  # and no cleanup has run
    found = await lookup(client)
    assert found["status"] == "hit"
    assert found["image"]["image_id"] == reuse["image_id"]
    entry = await (await client.get(f"/api/cache/{original['prompt_hash']}")).json()
    assert entry["image"]["image_id"] == reuse["image_id"]


async def test_an_expired_original_without_a_live_copy_is_a_miss(client, upload, database):
    await upload()
    database.expire_images()
    assert (await lookup(client))["status"] == "miss"


class FailingOnceGenerator(CountingGenerator):
    """The AI service failing on its first call, as they do."""

    async def generate(self, prompt: str) -> bytes:
        image = await super().generate(prompt)
        if self.calls == 1:
            raise RuntimeError("the AI service timed out")
        return image


async def test_a_released_claim_goes_to_the_waiting_caller_within_a_second(client, upload):
    generator = FailingOnceGenerator()
    first = await lookup(client)
    assert first["status"] == "miss"
    waiting = asyncio.create_task(lookup(client, wait_ms=30_000))
    await until_waiting(client)
    assert not waiting.done()  # pending on the first caller's claim

    with pytest.raises(RuntimeError):
        await generator.generate(SENTENCE)
    released = await client.delete(
        f"/api/cache/claims/{first['claim_token']}", params={"reason": "AI service timed out"}
    )
    assert released.status == 204
    started = time.monotonic()
    second = await waiting
    assert second["status"] == "miss"
    assert time.monotonic() - started < 1

    image = await generator.generate(SENTENCE)
    assert (await upload(image=image, claim_token=second["claim_token"])).status == 201
    assert (await lookup(client))["status"] == "hit"
    assert generator.calls == 2


async def test_releasing_an_unknown_or_spent_claim_is_404_and_keeps_the_live_one(client):
    first = await lookup(client)
    unknown = await client.delete(f"/api/cache/claims/{uuid.uuid4()}")
    assert unknown.status == 404
    assert (await lookup(client))["status"] == "pending"  # the holder still holds it
    assert (await client.delete(f"/api/cache/claims/{first['claim_token']}")).status == 204
    spent = await client.delete(f"/api/cache/claims/{first['claim_token']}")
    assert spent.status == 404
    malformed = await client.delete("/api/cache/claims/not-a-token")
    assert (await malformed.json())["error"]["field"] == "claim_token"


async def test_releasing_a_claim_needs_the_token(make_client):
    client = await make_client(IMAGE_SIDECAR_API_TOKEN="secret")
    response = await client.delete(f"/api/cache/claims/{uuid.uuid4()}")
    assert response.status == 401


def _registration(**overrides) -> dict:
    """A lookup's `register` object: a hit's fields without the sentence (it defaults to the
    looked-up prompt), style or service (they are the cached picture's)."""
    fields = image_fields(game_code="JUDGE", round_number=3, **overrides)
    for name in ("completed_sentence", "art_style", "ai_service"):
        fields.pop(name)
    return fields


async def test_a_lookup_that_registers_yields_the_new_record_counted_once(client, upload, database):
    original = await (await upload(generation_cost_usd="0.05")).json()
    register = _registration()
    for _ in range(2):  # the second is a retry: it changes nothing more
        answer = await lookup(client, register=register)
        assert answer["status"] == "hit"
        assert answer["registered"] is True
        assert answer["image"]["submission_id"] == register["submission_id"]
        assert answer["image"]["reused_from"] == original["image_id"]
        assert answer["image"]["completed_sentence"] == SENTENCE
    entry = await (await client.get(f"/api/cache/{original['prompt_hash']}")).json()
    assert entry["hit_count"] == 2  # the generation and this one hit
    assert database.rows("SELECT reused, cost_saved_usd FROM daily_usage WHERE reused > 0") == [
        {"reused": 1, "cost_saved_usd": Decimal("0.050000")}
    ]
    assert database.count("generated_images") == 2


async def test_a_lookup_that_registers_on_a_miss_is_a_plain_miss(client, database):
    answer = await lookup(client, register=_registration())
    assert answer["status"] == "miss"
    assert "registered" not in answer
    assert database.count("generated_images") == 0


@pytest.mark.parametrize(
    ("register", "field"),
    [
        ("not an object", "register"),
        ({"game_code": "X"}, "register.game_id"),
        (None, "register.player_id"),  # the fields of a hit, less one
    ],
)
async def test_a_register_object_with_a_fault_is_400_naming_the_field(
    client, upload, database, register, field
):
    await upload()
    if register is None:
        register = _registration()
        del register["player_id"]
    response = await client.post(
        "/api/cache/lookup",
        json={"prompt": SENTENCE, "art_style": "watercolor", "register": register},
    )
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field
    assert database.count("generated_images") == 1


async def test_a_released_claim_goes_to_exactly_one_of_the_waiting_lookups(client):
    first = await lookup(client)
    waiting = [asyncio.create_task(lookup(client, wait_ms=5_000)) for _ in range(3)]
    await until_waiting(client, count=3)
    await client.delete(f"/api/cache/claims/{first['claim_token']}")
    done, still_waiting = await asyncio.wait(waiting, timeout=1)
    assert [task.result()["status"] for task in done] == ["miss"]
    assert len(still_waiting) == 2  # they wait on the new holder's claim
    for answer in await asyncio.gather(*still_waiting):
        assert answer["status"] == "pending"


async def test_a_claim_whose_holder_never_came_back_is_forgotten_by_the_cleanup(
    client, database, pool, store
):
    gone = await lookup(client, prompt="A claim nobody comes back for")
    live = await lookup(client, prompt="A claim still in flight")
    assert (gone["status"], live["status"]) == ("miss", "miss")
    database.rows(
        "UPDATE cache_claims SET expires_at = now() - interval '2 hours' WHERE prompt_hash = %s",
        gone["prompt_hash"],
    )

    await run_cleanup(pool, store, RetentionSettings())

    held = {row["prompt_hash"] for row in database.rows("SELECT prompt_hash FROM cache_claims")}
    assert held == {live["prompt_hash"]}
    assert (await lookup(client, prompt="A claim nobody comes back for"))["status"] == "miss"
