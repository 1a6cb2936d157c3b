"""The prompt cache, second version: the generator in the key, released claims, lookups that
register, reuses that are the cached picture, live copies, takedowns and lasting history."""

from __future__ import annotations

from image_sidecar.prompts import prompt_hash
from tests.integration.test_prompt_cache import SENTENCE, lookup

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
