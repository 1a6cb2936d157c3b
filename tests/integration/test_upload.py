"""POST /api/images: the contract for storing a generated image."""

from __future__ import annotations

import uuid

import pytest

from image_sidecar.prompt_cache.prompts import prompt_hash
from testkit.helpers import game_id_of, storage_files
from testkit.images import jpeg_bytes, png_bytes, webp_bytes

# game-{CODE}-{game_id}: the directory tells apart games that share a room code.
ROUND_KEY = f"game-ABCD-{game_id_of('ABCD')}/round-1"


async def test_upload_returns_201_with_the_full_image_record(upload, storage_dir):
    player = uuid.uuid4()
    image = png_bytes(seed=1)
    response = await upload(image=image, player_id=player, generation_cost_usd="0.04")
    assert response.status == 201
    record = await response.json()
    assert record["game_code"] == "ABCD"
    assert record["round_number"] == 1
    assert record["player_id"] == str(player)
    assert record["content_type"] == "image/png"
    assert record["size_bytes"] == len(image)
    assert record["image_url"] == f"/generated-images/{ROUND_KEY}/player-{player}.png"
    assert record["prompt"] == "A cat riding a skateboard"
    assert record["prompt_hash"] == prompt_hash("A cat riding a skateboard", "watercolor")
    assert record["generation_cost_usd"] == 0.04
    assert record["expires_at"] > record["created_at"]
    assert (storage_dir / ROUND_KEY / f"player-{player}.png").read_bytes() == image


@pytest.mark.parametrize(
    ("image", "content_type", "extension"),
    [(jpeg_bytes(), "image/jpeg", "jpg"), (webp_bytes(), "image/webp", "webp")],
)
async def test_type_is_sniffed_from_the_bytes(upload, image, content_type, extension):
    response = await upload(image=image)
    record = await response.json()
    assert record["content_type"] == content_type
    assert record["image_url"].endswith("." + extension)


async def test_retry_with_same_submission_id_returns_existing_record(upload, database):
    submission = uuid.uuid4()
    first = await upload(submission_id=submission, image=png_bytes(seed=1))
    retry = await upload(submission_id=submission, image=png_bytes(seed=1))
    assert first.status == 201
    assert retry.status == 200
    assert (await retry.json())["image_id"] == (await first.json())["image_id"]
    assert database.count("generated_images") == 1


async def test_concurrent_retries_create_one_record(upload, database):
    import asyncio

    submission = uuid.uuid4()
    player = uuid.uuid4()
    responses = await asyncio.gather(
        *(upload(submission_id=submission, player_id=player) for _ in range(8))
    )
    assert sorted(r.status for r in responses) == [200] * 7 + [201]
    assert database.count("generated_images") == 1


async def test_second_submission_for_same_player_and_round_is_409(upload, database, storage_dir):
    player = uuid.uuid4()
    first_image = png_bytes(seed=1)
    await upload(player_id=player, image=first_image)
    response = await upload(player_id=player, image=png_bytes(seed=2))
    assert response.status == 409
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("conflict", "player_id")
    assert database.count("generated_images") == 1
    assert (storage_dir / ROUND_KEY / f"player-{player}.png").read_bytes() == first_image


async def test_per_upload_retention_days_sets_expiry(upload, database):
    response = await upload(retention_days="2")
    record = await response.json()
    (row,) = database.rows(
        "SELECT expires_at - created_at AS lifetime FROM generated_images WHERE image_id = %s",
        record["image_id"],
    )
    assert row["lifetime"].days == 2


async def test_prompt_field_overrides_the_sentence_as_prompt(upload):
    response = await upload(prompt="a very different prompt")
    record = await response.json()
    assert record["prompt"] == "a very different prompt"
    assert record["prompt_hash"] == prompt_hash("a very different prompt", "watercolor")


def _assert_nothing_written(database, storage_dir):
    assert database.count("generated_images") == 0
    assert database.count("image_cache") == 0
    assert storage_files(storage_dir) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"game_code": None}, "game_code"),
        ({"game_code": "../x"}, "game_code"),
        ({"game_code": "a/b"}, "game_code"),
        ({"game_code": "x" * 33}, "game_code"),
        ({"game_id": "not-a-uuid"}, "game_id"),
        ({"round_id": None}, "round_id"),
        ({"round_number": "-1"}, "round_number"),
        ({"round_number": "one"}, "round_number"),
        ({"player_id": "../../etc/passwd"}, "player_id"),
        ({"submission_id": None}, "submission_id"),
        ({"completed_sentence": None, "prompt": "A prompt"}, "completed_sentence"),
        ({"completed_sentence": "   "}, "completed_sentence"),
        ({"completed_sentence": "x" * 1001}, "completed_sentence"),
        ({"prompt": ""}, "prompt"),
        ({"art_style": "s" * 51}, "art_style"),
        ({"generation_cost_usd": "cheap"}, "generation_cost_usd"),
        ({"generation_cost_usd": "-1"}, "generation_cost_usd"),
        ({"retention_days": "0"}, "retention_days"),
        ({"retention_days": "99999"}, "retention_days"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
async def test_invalid_field_is_400_naming_the_field_and_writes_nothing(
    upload, database, storage_dir, overrides, field
):
    response = await upload(**overrides)
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == "invalid_field"
    assert body["error"]["field"] == field
    assert field in body["error"]["message"]
    _assert_nothing_written(database, storage_dir)


async def test_missing_image_part_is_400(client, database, storage_dir):
    import aiohttp

    from testkit.helpers import image_fields

    form = aiohttp.FormData()
    for name, value in image_fields().items():
        form.add_field(name, value)
    form.add_field("dummy_file", b"x", filename="x.bin")  # forces multipart encoding
    response = await client.post("/api/images", data=form)
    assert response.status == 400
    body = await response.json()
    assert body["error"]["field"] in ("image", "dummy_file")
    _assert_nothing_written(database, storage_dir)


async def test_json_body_instead_of_multipart_is_400(client, database, storage_dir):
    response = await client.post("/api/images", json={"game_code": "ABCD"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"
    _assert_nothing_written(database, storage_dir)


async def test_not_an_image_is_415_and_writes_nothing(upload, database, storage_dir):
    response = await upload(image=b"GIF89a" + b"\x00" * 100)
    assert response.status == 415
    body = await response.json()
    assert body["error"]["code"] == "unsupported_media_type"
    _assert_nothing_written(database, storage_dir)


async def test_html_disguised_as_png_is_415(upload, database, storage_dir):
    response = await upload(image=b"<html><script>alert(1)</script></html>")
    assert response.status == 415
    _assert_nothing_written(database, storage_dir)


async def test_image_over_the_limit_is_413_and_writes_nothing(make_client, database, storage_dir):
    import aiohttp

    from testkit.helpers import image_fields

    client = await make_client(IMAGE_MAX_UPLOAD_BYTES="1000")
    form = aiohttp.FormData()
    for name, value in image_fields().items():
        form.add_field(name, value)
    form.add_field("image", png_bytes(seed=1, size=64), filename="big.png")
    response = await client.post("/api/images", data=form)
    assert response.status == 413
    body = await response.json()
    assert body["error"]["code"] == "too_large"
    assert "1000" in body["error"]["message"]
    _assert_nothing_written(database, storage_dir)


async def test_upload_without_token_is_401_when_a_token_is_set(make_client, database, storage_dir):
    import aiohttp

    from testkit.helpers import image_fields

    client = await make_client(IMAGE_SIDECAR_API_TOKEN="s3cret")

    def form() -> aiohttp.FormData:
        data = aiohttp.FormData()
        for name, value in image_fields(submission_id=str(uuid.UUID(int=9))).items():
            data.add_field(name, value)
        data.add_field("image", png_bytes(), filename="a.png")
        return data

    missing = await client.post("/api/images", data=form())
    wrong = await client.post("/api/images", data=form(), headers={"Authorization": "Bearer nope"})
    for response in (missing, wrong):
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"
    _assert_nothing_written(database, storage_dir)
    right = await client.post(
        "/api/images", data=form(), headers={"Authorization": "Bearer s3cret"}
    )
    assert right.status == 201
