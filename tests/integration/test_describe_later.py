"""The story's order of calls: a picture saved first (saveImage) and described afterwards
(cacheImageMetadata), and a hit that is only counted (recordCacheHit)."""

from __future__ import annotations

import pytest

from image_sidecar.prompt_cache.prompts import prompt_hash
from testkit.cache import SENTENCE, lookup
from testkit.database import Database
from testkit.helpers import storage_files

UNDESCRIBED = {"completed_sentence": None, "art_style": None, "ai_service": None}


async def describe(client, image_id: str, **body: str):
    return await client.patch(f"/api/images/{image_id}", json=body)


async def test_an_upload_without_its_sentence_is_stored_and_listed_without_a_prompt(
    client, upload, database: Database
):
    response = await upload(**UNDESCRIBED)
    assert response.status == 201, await response.text()
    record = await response.json()
    assert (record["completed_sentence"], record["prompt"], record["prompt_hash"]) == (
        None,
        None,
        None,
    )
    listed = await (await client.get("/api/games/ABCD/rounds/1/images")).json()
    assert [image["image_id"] for image in listed["images"]] == [record["image_id"]]
    assert database.count("image_cache") == 0


async def test_describing_it_sets_the_sentence_and_makes_it_the_prompts_cache_entry(client, upload):
    record = await (await upload(**UNDESCRIBED)).json()
    response = await describe(
        client, record["image_id"], completed_sentence=SENTENCE, art_style="watercolor"
    )
    assert response.status == 200, await response.text()
    described = await response.json()
    assert described["completed_sentence"] == described["prompt"] == SENTENCE
    assert described["art_style"] == "watercolor"
    assert described["prompt_hash"] == prompt_hash(SENTENCE, "watercolor")
    found = await lookup(client)
    assert found["status"] == "hit"
    assert found["image"]["image_id"] == record["image_id"]


async def test_the_same_description_twice_answers_the_record_and_a_different_one_is_409(
    client, upload
):
    record = await (await upload(**UNDESCRIBED)).json()
    first = await (await describe(client, record["image_id"], completed_sentence=SENTENCE)).json()
    again = await describe(client, record["image_id"], completed_sentence=SENTENCE)
    assert again.status == 200
    assert await again.json() == first
    other = await describe(client, record["image_id"], completed_sentence="A dog on a unicycle")
    assert other.status == 409
    error = (await other.json())["error"]
    assert (error["code"], error["field"]) == ("conflict", "completed_sentence")


async def test_a_description_contradicting_the_uploaded_style_is_409_naming_it(client, upload):
    record = await (await upload(completed_sentence=None, art_style="pixel art")).json()
    response = await describe(
        client, record["image_id"], completed_sentence=SENTENCE, art_style="watercolor"
    )
    assert response.status == 409
    assert (await response.json())["error"]["field"] == "art_style"
    unchanged = await (
        await client.get(f"/api/games/ABCD/rounds/1/players/{record['player_id']}/image")
    ).json()
    assert unchanged["completed_sentence"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "completed_sentence"),
        ({"completed_sentence": "   "}, "completed_sentence"),
        ({"completed_sentence": SENTENCE, "game_code": "ABCD"}, "game_code"),
        ({"completed_sentence": SENTENCE, "art_style": "water\x00color"}, "art_style"),
    ],
)
async def test_a_bad_description_is_400_naming_the_field(client, upload, body, field):
    record = await (await upload(**UNDESCRIBED)).json()
    response = await client.patch(f"/api/images/{record['image_id']}", json=body)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field


async def test_describing_an_unknown_image_is_404_and_a_malformed_id_400(client):
    unknown = await describe(client, "00000000-0000-4000-8000-000000000000", completed_sentence="x")
    assert unknown.status == 404
    malformed = await describe(client, "not-a-uuid", completed_sentence="x")
    assert malformed.status == 400
    assert (await malformed.json())["error"]["field"] == "image_id"


@pytest.mark.parametrize("field", ["prompt", "claim_token"])
async def test_a_prompt_or_claim_without_the_sentence_is_refused_and_nothing_is_written(
    upload, database: Database, storage_dir, field
):
    value = "00000000-0000-4000-8000-000000000000" if field == "claim_token" else "a prompt"
    response = await upload(**{**UNDESCRIBED, field: value})
    assert response.status == 400
    assert (await response.json())["error"]["field"] in (field, "completed_sentence")
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


async def test_a_counted_hit_adds_to_the_entry_and_the_savings_without_a_record(
    client, upload, database: Database
):
    original = await (await upload(generation_cost_usd="0.04")).json()
    key = original["prompt_hash"]
    response = await client.post(f"/api/cache/{key}/hit-count")
    assert response.status == 200, await response.text()
    entry = await response.json()
    assert entry["hit_count"] == 2  # the generation, then this hit
    assert entry["image"]["image_id"] == original["image_id"]
    assert database.count("generated_images") == 1
    stats = await (await client.get("/api/stats")).json()
    assert stats["cost_saved_usd"] == pytest.approx(0.04)


async def test_counting_a_hit_on_an_unknown_prompt_is_404(client):
    response = await client.post(f"/api/cache/{'0' * 64}/hit-count")
    assert response.status == 404
