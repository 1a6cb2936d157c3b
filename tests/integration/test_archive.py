"""Export and import: a game (or a player's pictures) carried out to one zip and back in, every
record field and byte as it was; a second import changes nothing; a damaged or tampered archive
writes nothing."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path

import pytest

from testkit.helpers import image_fields, run_sidecar, storage_files, uploader
from testkit.images import noise_png

PLAYER = str(uuid.uuid4())
# Every column of a record as the database holds it (what an archive must give back).
RECORDS = "SELECT to_jsonb(g) AS row FROM generated_images g ORDER BY image_id"


def _cli(environ: dict[str, str], cwd: Path, *args: str):
    return run_sidecar(*args, cwd=cwd, environ=environ, timeout=120)


async def _a_game_night(client) -> list[dict]:
    """Game PARTY: four pictures over two rounds (one a cache reuse of game OTHER's picture,
    sharing its bytes), player names, a winner; PLAYER also drew in game OTHER."""
    upload = uploader(client)
    other = await (
        await upload(image=noise_png(64, seed=9), game_code="OTHER", player_id=PLAYER)
    ).json()
    party = []
    for seed, (round_number, name) in enumerate([(1, "Ana"), (1, "Bo"), (2, "Ana")]):
        response = await upload(
            image=noise_png(64, seed=seed),
            game_code="PARTY",
            round_number=round_number,
            player_name=name,
            player_id=PLAYER if name == "Ana" else str(uuid.uuid4()),
            completed_sentence=f"sentence {seed}",
        )
        party.append(await response.json())
    hits = f"/api/cache/{other['prompt_hash']}/hits"
    reuse = await client.post(hits, json=image_fields(game_code="PARTY", round_number=2))
    party.append(await reuse.json())
    winner = await client.put(
        "/api/games/PARTY/rounds/1/winner", json={"player_id": party[1]["player_id"]}
    )
    assert winner.status == 200, await winner.text()
    return party


async def test_export_purge_import_gives_back_every_field_and_byte_and_again_changes_nothing(
    client, database, storage_dir, sidecar_environ, tmp_path
):
    party = await _a_game_night(client)
    game_id = party[0]["game_id"]
    records_before = database.rows(RECORDS)
    winners_before = database.rows("SELECT * FROM round_winners")
    bytes_before = {r["image_id"]: await (await client.get(r["image_url"])).read() for r in party}

    exported = _cli(sidecar_environ, tmp_path, "export", "--game-id", game_id, "--out", "g.zip")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["images"] == 4
    purged = await client.delete("/api/games/PARTY", params={"game_id": game_id})
    assert purged.status == 200
    assert len(database.rows(RECORDS)) == 1  # OTHER's picture only
    sentence = {"prompt": "sentence 0", "art_style": "watercolor"}
    missed = await (await client.post("/api/cache/lookup", json=sentence)).json()
    assert missed["status"] == "miss"  # the purge took its entry: a paid call again
    released = await client.delete(f"/api/cache/claims/{missed['claim_token']}")
    assert released.status == 204

    imported = _cli(sidecar_environ, tmp_path, "import", "g.zip")
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert (summary["images_restored"], summary["winners_restored"]) == (4, 1)
    # The three prompts PARTY paid for answer again; the reuse's prompt is OTHER's live entry.
    assert summary["cache_entries_restored"] == 3
    hit = await (await client.post("/api/cache/lookup", json=sentence)).json()
    assert (hit["status"], hit["image"]["image_id"]) == ("hit", party[0]["image_id"])
    assert summary["files_linked"] == 1  # the reuse's bytes are OTHER's, stored already
    assert database.rows(RECORDS) == records_before
    assert database.rows("SELECT * FROM round_winners") == winners_before
    for record in party:
        assert (
            await (await client.get(record["image_url"])).read() == bytes_before[record["image_id"]]
        )
    listed = await (await client.get("/api/games/PARTY/rounds/1/images")).json()
    assert [image["is_winner"] for image in listed["images"]].count(True) == 1

    files = storage_files(storage_dir)
    again = _cli(sidecar_environ, tmp_path, "import", "g.zip")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["images_restored"], summary["images_present"]) == (0, 4)
    assert database.rows(RECORDS) == records_before
    assert storage_files(storage_dir) == files


def _rewritten(archive: Path, out: Path, change) -> Path:
    """A copy of the archive with `change(name, data)` applied to each member's bytes."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, change(info.filename, source.read(info)))
    return out


def _flip_one_picture(name: str, data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1]) if name.startswith("images/") else data


def _claim_other_bytes(name: str, data: bytes) -> bytes:
    if name != "manifest.json":
        return data
    manifest = json.loads(data)
    manifest["generated_images"][0]["sha256"] = "0" * 64
    return json.dumps(manifest).encode()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda a, o: _rewritten(a, o, _flip_one_picture), id="a flipped bit"),
        pytest.param(lambda a, o: _rewritten(a, o, _claim_other_bytes), id="an edited manifest"),
        pytest.param(
            lambda a, o: o.write_bytes(a.read_bytes()[: a.stat().st_size // 2]) and o,
            id="a truncated zip",
        ),
    ],
)
async def test_a_damaged_or_tampered_archive_writes_nothing_and_says_why(
    client, database, storage_dir, sidecar_environ, tmp_path, tamper
):
    party = await _a_game_night(client)
    archive = tmp_path / "g.zip"
    exported = _cli(sidecar_environ, tmp_path, "export", "--game", "party", "--out", str(archive))
    assert exported.returncode == 0, exported.stderr
    await client.delete("/api/games/PARTY", params={"game_id": party[0]["game_id"]})
    records, files = database.rows(RECORDS), storage_files(storage_dir)

    bad = tamper(archive, tmp_path / "bad.zip")
    imported = _cli(sidecar_environ, tmp_path, "import", str(bad))
    assert imported.returncode != 0
    assert "nothing imported" in imported.stderr
    assert database.rows(RECORDS) == records
    assert storage_files(storage_dir) == files


async def test_a_players_export_holds_their_pictures_and_nobody_elses(
    client, sidecar_environ, tmp_path
):
    await _a_game_night(client)
    exported = _cli(sidecar_environ, tmp_path, "export", "--player-id", PLAYER, "--out", "p.zip")
    assert exported.returncode == 0, exported.stderr
    with zipfile.ZipFile(tmp_path / "p.zip") as archive:
        manifest = json.loads(archive.read("manifest.json"))
        pictures = [name for name in archive.namelist() if name.startswith("images/")]
    images = manifest["generated_images"]
    assert len(images) == 3  # two in PARTY, one in OTHER
    assert {image["player_id"] for image in images} == {PLAYER}
    assert {image["game_code"] for image in images} == {"PARTY", "OTHER"}
    assert len(pictures) == 3
    assert manifest["round_winners"] == []  # Bo won round 1, not this player


def test_an_empty_selection_is_refused_and_leaves_no_file(sidecar_environ, tmp_path, database):
    exports = tmp_path / "exports"
    exports.mkdir()
    exported = _cli(sidecar_environ, exports, "export", "--game", "NOPE", "--out", "n.zip")
    assert exported.returncode != 0
    assert "NOPE" in exported.stderr
    assert list(exports.iterdir()) == []


async def test_a_stored_picture_that_no_longer_matches_its_record_is_never_exported(
    client, storage_dir, sidecar_environ, tmp_path
):
    party = await _a_game_night(client)
    damaged = storage_dir / party[2]["image_path"]
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    exports = tmp_path / "exports"
    exports.mkdir()
    exported = _cli(sidecar_environ, exports, "export", "--game", "PARTY", "--out", "g.zip")
    assert exported.returncode != 0
    assert "scrub" in exported.stderr
    assert list(exports.iterdir()) == []
