"""Listing a round, a game, and one player's image."""

from __future__ import annotations

import uuid

import pytest

from testkit.helpers import game_id_of, round_id_of
from testkit.images import png_bytes

ROUND_ID = uuid.UUID(round_id_of(game_id_of("ABCD"), 1))


async def _upload_round(upload, round_number=1, round_id=ROUND_ID, players=4, game_code="ABCD"):
    records = []
    for seed in range(players):
        response = await upload(
            image=png_bytes(seed=seed + round_number * 10),
            round_number=round_number,
            round_id=round_id,
            game_code=game_code,
        )
        assert response.status == 201
        records.append(await response.json())
    return records


async def test_four_players_listed_and_each_url_serves_identical_bytes(upload, client):
    uploaded = await _upload_round(upload)
    response = await client.get("/api/games/ABCD/rounds/1/images")
    assert response.status == 200
    listed = (await response.json())["images"]
    assert [r["image_id"] for r in listed] == [r["image_id"] for r in uploaded]
    for seed, record in enumerate(listed):
        image = await client.get(record["image_url"])
        assert image.status == 200
        assert image.headers["Content-Type"] == "image/png"
        assert await image.read() == png_bytes(seed=seed + 10)


async def test_round_can_be_named_by_its_uuid(upload, client):
    await _upload_round(upload, players=2)
    by_number = await (await client.get("/api/games/ABCD/rounds/1/images")).json()
    by_uuid = await (await client.get(f"/api/games/ABCD/rounds/{ROUND_ID}/images")).json()
    assert by_uuid == by_number
    assert len(by_uuid["images"]) == 2


async def test_round_listing_holds_only_that_game_and_round(upload, client):
    await _upload_round(upload, round_number=1, players=2)
    await _upload_round(upload, round_number=2, round_id=uuid.uuid4(), players=1)
    await _upload_round(upload, round_number=1, players=1, game_code="OTHER")
    listed = (await (await client.get("/api/games/ABCD/rounds/1/images")).json())["images"]
    assert {(r["game_code"], r["round_number"]) for r in listed} == {("ABCD", 1)}
    assert len(listed) == 2


async def test_game_listing_returns_every_round_in_order(upload, client):
    await _upload_round(upload, round_number=2, round_id=uuid.uuid4(), players=1)
    await _upload_round(upload, round_number=1, players=2)
    listed = (await (await client.get("/api/games/ABCD/images")).json())["images"]
    assert [r["round_number"] for r in listed] == [1, 1, 2]


async def test_player_image_is_returned(upload, client):
    player = uuid.uuid4()
    uploaded = await (await upload(player_id=player)).json()
    response = await client.get(f"/api/games/ABCD/rounds/1/players/{player}/image")
    assert response.status == 200
    assert (await response.json()) == uploaded


async def test_player_without_image_is_404(client):
    response = await client.get(f"/api/games/ABCD/rounds/1/players/{uuid.uuid4()}/image")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_unknown_game_lists_no_images(client):
    response = await client.get("/api/games/NOPE/images")
    assert response.status == 200
    assert await response.json() == {"images": []}


async def test_expired_images_are_not_listed(upload, client, database):
    record = await (await upload()).json()
    database.expire_images("image_id = %s", record["image_id"])
    listed = await (await client.get("/api/games/ABCD/rounds/1/images")).json()
    assert listed == {"images": []}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/games/bad..code/images", "game_code"),
        ("/api/games/ABCD/rounds/first/images", "round"),
        ("/api/games/ABCD/rounds/99999/images", "round"),
        ("/api/games/ABCD/rounds/1/players/not-a-uuid/image", "player_id"),
    ],
)
async def test_malformed_path_parameter_is_400_naming_it(client, path, field):
    response = await client.get(path)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field


async def test_listing_survives_a_restart_of_the_service(make_client, upload):
    uploaded = await _upload_round(upload, players=4)
    restarted = await make_client()
    listed = (await (await restarted.get("/api/games/ABCD/rounds/1/images")).json())["images"]
    assert [r["image_id"] for r in listed] == [r["image_id"] for r in uploaded]
    for seed, record in enumerate(listed):
        assert await (await restarted.get(record["image_url"])).read() == png_bytes(seed=seed + 10)
