"""Recycled room codes: a game is its game_id; one picture per player per round; identifiers
that contradict what the game holds are refused."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from testkit.helpers import game_id_of, image_fields, round_id_of, uploader
from testkit.images import jpeg_bytes, png_bytes

OLD_GAME, NEW_GAME = str(uuid.uuid4()), str(uuid.uuid4())
PLAYERS = [str(uuid.UUID(int=100 + n)) for n in range(3)]


async def play(upload, game_id: str, seed: int, rounds: int = 2) -> list[dict]:
    """Every player uploads a picture in every round of `game_id` under the code ABCD."""
    records = []
    for round_number in range(1, rounds + 1):
        for n, player in enumerate(PLAYERS):
            response = await upload(
                game_id=game_id,
                round_number=round_number,
                player_id=player,
                image=png_bytes(seed=seed + 10 * round_number + n),
            )
            assert response.status == 201, await response.text()
            records.append(await response.json())
    return records


async def listed(client, path: str) -> list[dict]:
    response = await client.get(path)
    assert response.status == 200
    return (await response.json())["images"]


async def test_two_games_with_one_code_never_mix(client, upload, database):
    old = await play(upload, OLD_GAME, seed=1)
    new = await play(upload, NEW_GAME, seed=100)

    by_code = await listed(client, "/api/games/ABCD/rounds/1/images")
    assert {r["game_id"] for r in by_code} == {NEW_GAME}
    assert len(by_code) == len(PLAYERS)
    older = await listed(client, f"/api/games/ABCD/rounds/1/images?game_id={OLD_GAME}")
    assert {r["game_id"] for r in older} == {OLD_GAME}
    assert {r["game_id"] for r in await listed(client, "/api/games/ABCD/images")} == {NEW_GAME}
    player = await client.get(f"/api/games/ABCD/rounds/2/players/{PLAYERS[0]}/image")
    assert (await player.json())["game_id"] == NEW_GAME

    for record, seed in [(old[0], 11), (new[0], 110)]:
        served = await client.get(record["image_url"])
        assert await served.read() == png_bytes(seed=seed)
    assert old[0]["image_url"] != new[0]["image_url"]

    ambiguous = await client.delete("/api/games/ABCD")
    assert ambiguous.status == 409
    error = (await ambiguous.json())["error"]
    assert error["code"] == "ambiguous_game"
    assert set(error["game_ids"]) == {OLD_GAME, NEW_GAME}
    assert database.count("generated_images") == 2 * len(old)

    purged = await client.delete(f"/api/games/ABCD?game_id={OLD_GAME}")
    assert purged.status == 200
    assert (await purged.json())["images_deleted"] == len(old)
    assert {
        row["game_id"] for row in database.rows("SELECT game_id::text FROM generated_images")
    } == {NEW_GAME}
    assert (await client.get(old[0]["image_url"])).status == 404
    assert (await client.get(new[0]["image_url"])).status == 200
    # With one game left under the code, a purge without game_id is no longer a guess.
    assert (await client.delete("/api/games/ABCD")).status == 200
    assert database.count("generated_images") == 0


async def test_purging_every_game_of_a_code_takes_all_true(client, upload, database):
    await play(upload, OLD_GAME, seed=1, rounds=1)
    await play(upload, NEW_GAME, seed=100, rounds=1)
    player = PLAYERS[1]
    ambiguous = await client.delete(f"/api/games/ABCD/players/{player}/images")
    assert ambiguous.status == 409
    everything = await client.delete(f"/api/games/ABCD/players/{player}/images?all=true")
    assert (await everything.json())["images_deleted"] == 2
    assert database.count("generated_images") == 2 * (len(PLAYERS) - 1)


@pytest.mark.parametrize("query", ["?game_id=nope", "?all=maybe", "?gameid=x"])
async def test_a_malformed_purge_selector_is_400_and_deletes_nothing(
    client, upload, database, query
):
    await upload()
    response = await client.delete(f"/api/games/ABCD{query}")
    assert response.status == 400
    assert database.count("generated_images") == 1


async def test_an_unknown_game_id_lists_nothing(client, upload):
    await upload()
    assert await listed(client, f"/api/games/ABCD/images?game_id={uuid.uuid4()}") == []
    response = await client.get("/api/games/ABCD/images?game_id=not-a-uuid")
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "game_id"


async def test_a_second_picture_of_another_type_is_409(upload, database):
    player = str(uuid.uuid4())
    assert (await upload(player_id=player, image=png_bytes())).status == 201
    response = await upload(player_id=player, image=jpeg_bytes())
    assert response.status == 409
    assert (await response.json())["error"]["field"] == "player_id"
    assert database.count("generated_images") == 1


async def test_two_replicas_racing_for_one_slot_store_one_picture(make_client, client, database):
    other_replica = await make_client()
    player = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(
            uploader(replica)(player_id=player, image=image)
            for replica, image in [(client, png_bytes(seed=1)), (other_replica, jpeg_bytes())] * 3
        )
    )
    assert sorted(r.status for r in responses) == [201] + [409] * 5
    assert database.count("generated_images") == 1
    assert len(await listed(client, "/api/games/ABCD/rounds/1/images")) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"game_code": "WXYZ"}, "game_code"),  # the game's id under another code
        ({"round_id": str(uuid.uuid4())}, "round_id"),  # round 1 named by another id
        # round 1's id given with another number
        ({"round_number": "2", "round_id": round_id_of(game_id_of("ABCD"), 1)}, "round_number"),
    ],
)
async def test_identifiers_contradicting_the_game_are_409_naming_the_field(
    upload, database, storage_dir, overrides, field
):
    await upload()
    files_before = sorted(storage_dir.rglob("*"))
    response = await upload(**{"game_id": game_id_of("ABCD"), **overrides})
    assert response.status == 409
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("conflict", field)
    assert database.count("generated_images") == 1
    assert sorted(storage_dir.rglob("*")) == files_before


async def test_a_cache_hit_that_contradicts_its_game_is_409(client, upload, database):
    from image_sidecar.prompt_cache.prompts import prompt_hash

    await upload()
    key = prompt_hash("A cat riding a skateboard", "watercolor")
    response = await client.post(
        f"/api/cache/{key}/hits", json=image_fields(game_id=game_id_of("ABCD"), game_code="ZZZ")
    )
    assert response.status == 409
    assert (await response.json())["error"]["field"] == "game_code"
    assert database.rows("SELECT coalesce(sum(reused), 0) AS n FROM daily_usage") == [{"n": 0}]


async def test_room_codes_compare_case_insensitively(client, upload):
    record = await (await upload(game_code="abc123")).json()
    assert record["game_code"] == "ABC123"
    assert record["image_path"].startswith("game-ABC123-")
    assert len(await listed(client, "/api/games/Abc123/rounds/1/images")) == 1
    assert len(await listed(client, "/api/games/ABC123/images")) == 1
