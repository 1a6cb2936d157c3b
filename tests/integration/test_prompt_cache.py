"""The prompt cache: hit/miss/pending, single-flight claims, hits that share bytes, moderation."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from decimal import Decimal

import pytest

from image_sidecar.prompt_cache.prompts import prompt_hash
from testkit.cache import KEY, SENTENCE, CountingGenerator, hit, lookup, until_waiting
from testkit.helpers import image_fields
from testkit.images import png_bytes


async def play_turn(client, upload, generator, game_code, prompt, player=None):
    """What the game server does for one player: look up, generate on a miss, or reuse a hit."""
    found = await lookup(client, prompt)
    fields = {"game_code": game_code, "completed_sentence": prompt}
    if player:
        fields["player_id"] = player
    if found["status"] == "miss":
        image = await generator.generate(prompt)
        response = await upload(image=image, claim_token=found["claim_token"], **fields)
    else:
        assert found["status"] == "hit"
        response = await client.post(
            f"/api/cache/{found['prompt_hash']}/hits", json=image_fields(**fields)
        )
    assert response.status == 201, await response.text()
    return found["status"], await response.json()


async def test_full_flow_pays_for_one_generation(client, upload, storage_dir):
    generator = CountingGenerator()
    first_status, original = await play_turn(client, upload, generator, "ABCD", SENTENCE)
    second_status, reused = await play_turn(
        client, upload, generator, "EFGH", "  a CAT riding   a Skateboard "
    )
    assert (first_status, second_status) == ("miss", "hit")
    assert generator.calls == 1
    assert reused["reused_from"] == original["image_id"]
    assert reused["sha256"] == original["sha256"]
    listed = await (await client.get("/api/games/EFGH/rounds/1/images")).json()
    assert [r["image_id"] for r in listed["images"]] == [reused["image_id"]]
    served = await client.get(reused["image_url"])
    assert await served.read() == png_bytes(seed=1)
    original_path = storage_dir / original["image_url"].removeprefix("/generated-images/")
    reused_path = storage_dir / reused["image_url"].removeprefix("/generated-images/")
    assert os.stat(original_path).st_ino == os.stat(reused_path).st_ino


async def test_upload_records_the_cache_entry_and_get_returns_it(client, upload):
    record = await (await upload()).json()
    response = await client.get(f"/api/cache/{KEY}")
    assert response.status == 200
    entry = await response.json()
    assert entry["prompt_hash"] == KEY
    assert entry["hit_count"] == 1  # the story's count: the generation is the first use
    assert entry["last_hit"] == entry["created_at"]  # the last use: the generation
    assert entry["image"]["image_id"] == record["image_id"]


async def test_fifty_concurrent_hits_count_fifty(client, upload, database):
    await upload()
    responses = await asyncio.gather(*(hit(client) for _ in range(50)))
    assert [r.status for r in responses] == [201] * 50
    entry = await (await client.get(f"/api/cache/{KEY}")).json()
    assert entry["hit_count"] == 1 + 50
    assert entry["last_hit"] is not None
    assert database.count("generated_images") == 51


async def test_twenty_concurrent_lookups_hand_out_exactly_one_claim(client, upload):
    results = await asyncio.gather(*(lookup(client) for _ in range(20)))
    statuses = sorted(r["status"] for r in results)
    assert statuses == ["miss"] + ["pending"] * 19
    (miss,) = [r for r in results if r["status"] == "miss"]
    assert all(0 < r["retry_after_ms"] <= 2000 for r in results if r["status"] == "pending")
    await upload(claim_token=miss["claim_token"])
    after = await asyncio.gather(*(lookup(client) for _ in range(20)))
    assert {r["status"] for r in after} == {"hit"}


@pytest.mark.parametrize("waiter_on", ["the same replica", "another replica"])
async def test_pending_waiter_is_answered_when_the_image_arrives(
    make_client, client, upload, waiter_on
):
    waiting = client
    if waiter_on == "another replica":  # NOTIFY reaches every replica sharing the database
        waiting = await make_client()
    claimed = await lookup(client)
    assert claimed["status"] == "miss"
    waiter = asyncio.ensure_future(lookup(waiting, wait_ms=10_000))
    await until_waiting(waiting)
    assert not waiter.done()
    uploaded = await (await upload(claim_token=claimed["claim_token"])).json()
    result = await asyncio.wait_for(waiter, 5)
    assert result["status"] == "hit"
    assert result["image"]["image_id"] == uploaded["image_id"]


async def test_pending_waiter_gives_up_after_wait_ms(client):
    await lookup(client)
    started = time.monotonic()
    result = await lookup(client, wait_ms=300)
    assert result["status"] == "pending"
    assert 0.25 < time.monotonic() - started < 3


async def test_expired_claim_passes_to_exactly_one_waiter(make_client):
    client = await make_client(IMAGE_CACHE_CLAIM_SECONDS="1")
    assert (await lookup(client))["status"] == "miss"  # the holder then dies
    waiters = await asyncio.gather(*(lookup(client, wait_ms=1_800) for _ in range(5)))
    statuses = sorted(r["status"] for r in waiters)
    assert statuses == ["miss"] + ["pending"] * 4


async def test_delete_forgets_the_mapping_but_keeps_the_images(client, upload, database):
    record = await (await upload()).json()
    response = await client.delete(f"/api/cache/{KEY}")
    assert response.status == 204
    assert (await lookup(client))["status"] == "miss"
    assert (await client.get(f"/api/cache/{KEY}")).status == 404
    listed = await (await client.get("/api/games/ABCD/rounds/1/images")).json()
    assert [r["image_id"] for r in listed["images"]] == [record["image_id"]]


async def test_upload_after_moderation_becomes_the_new_entry(client, upload):
    await upload(image=png_bytes(seed=1))
    await client.delete(f"/api/cache/{KEY}")
    fresh = await (await upload(image=png_bytes(seed=2), game_code="NEW")).json()
    entry = await (await client.get(f"/api/cache/{KEY}")).json()
    assert entry["image"]["image_id"] == fresh["image_id"]


async def test_hit_saves_the_images_own_cost_or_the_services_default(client, upload, database):
    await upload(generation_cost_usd="0.07")
    await hit(client)
    other = prompt_hash("A dog", None)
    await upload(completed_sentence="A dog", art_style=None, ai_service="dall-e-3", game_code="X")
    await hit(client, key=other, completed_sentence="A dog", art_style=None)
    saved = database.rows("SELECT sum(reused) AS hits, sum(cost_saved_usd) AS usd FROM daily_usage")
    # 0.07 of the first picture's own cost, 0.04 of IMAGE_GENERATION_COST_USD's default for
    # dall-e-3
    assert saved == [{"hits": 2, "usd": Decimal("0.11")}]


async def test_retried_hit_returns_the_same_record_and_counts_once(client, upload, database):
    await upload()
    submission = str(uuid.uuid4())
    first = await hit(client, submission_id=submission)
    retry = await hit(client, submission_id=submission)
    assert (first.status, retry.status) == (201, 200)
    assert (await first.json())["image_id"] == (await retry.json())["image_id"]
    entry = await (await client.get(f"/api/cache/{KEY}")).json()
    assert entry["hit_count"] == 2
    assert _hits_counted(database) == 1


def _assert_no_hit_registered(database, storage_dir, files_before):
    assert database.count("generated_images") == 1
    assert _hits_counted(database) == 0
    assert database.rows("SELECT hit_count FROM image_cache")[0]["hit_count"] == 1
    assert sorted(p for p in storage_dir.rglob("*") if p.is_file()) == files_before


async def test_hit_for_an_expired_image_is_404_and_registers_nothing(
    client, upload, database, storage_dir
):
    await upload()
    files_before = sorted(p for p in storage_dir.rglob("*") if p.is_file())
    database.expire_images()
    response = await hit(client)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    _assert_no_hit_registered(database, storage_dir, files_before)


async def test_hit_whose_file_is_gone_is_404_and_registers_nothing(
    client, upload, database, storage_dir
):
    record = await (await upload()).json()
    (storage_dir / record["image_url"].removeprefix("/generated-images/")).unlink()
    files_before = sorted(p for p in storage_dir.rglob("*") if p.is_file())
    response = await hit(client)
    assert response.status == 404
    _assert_no_hit_registered(database, storage_dir, files_before)


async def test_hit_for_a_player_who_already_has_an_image_is_409(client, upload, database):
    await upload()
    player = str(uuid.uuid4())
    await upload(game_code="EFGH", round_number=2, player_id=player, image=png_bytes(seed=5))
    response = await hit(client, player_id=player)
    assert response.status == 409
    assert _hits_counted(database) == 0


async def test_unknown_hash_is_404(client):
    unknown = "0" * 64
    assert (await client.get(f"/api/cache/{unknown}")).status == 404
    assert (await client.delete(f"/api/cache/{unknown}")).status == 404
    response = await hit(client, key=unknown)
    assert response.status == 404


@pytest.mark.parametrize("bad", ["abc", "G" * 64, KEY.upper(), KEY + "0"])
async def test_malformed_hash_is_400(client, bad):
    for response in (
        await client.get(f"/api/cache/{bad}"),
        await client.delete(f"/api/cache/{bad}"),
        await hit(client, key=bad),
    ):
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "prompt_hash"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({}, "prompt"),
        ({"prompt": "x", "wait_ms": 999_999}, "wait_ms"),
        ({"prompt": "x", "wait_ms": -1}, "wait_ms"),
        ({"prompt": "x", "colour": "red"}, "colour"),
        ({"prompt": ["x"]}, "prompt"),
    ],
)
async def test_bad_lookup_is_400_and_claims_nothing(client, database, body, field):
    response = await client.post("/api/cache/lookup", json=body)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field
    assert database.count("cache_claims") == 0


async def test_lookup_with_a_non_json_body_is_400(client):
    response = await client.post("/api/cache/lookup", data=b"prompt=x")
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"


async def test_cache_writes_need_the_token_when_one_is_set(make_client, database):
    client = await make_client(IMAGE_SIDECAR_API_TOKEN="t0k")
    for response in (
        await client.post("/api/cache/lookup", json={"prompt": "x"}),
        await client.delete(f"/api/cache/{KEY}"),
        await hit(client),
    ):
        assert response.status == 401
    assert database.count("cache_claims") == 0


def _hits_counted(database) -> int:
    """Hits counted in the savings' history."""
    return database.rows("SELECT coalesce(sum(reused), 0) AS n FROM daily_usage")[0]["n"]
