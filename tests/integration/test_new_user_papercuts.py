"""What a new user tripped over (issue 25), each as it must be now: garbage Content-Encoding,
zip names, art styles in any script, bounded metric labels, /hits without the sentence, player
names, an exact dry run, cleanups as of an instant, the shipped versions."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from image_sidecar.config import RetentionSettings
from image_sidecar.lifecycle.cleanup import run_cleanup
from image_sidecar.prompt_cache.prompts import prompt_hash
from testkit.cache import hit, lookup
from testkit.helpers import image_fields, run_sidecar, storage_files
from testkit.images import png_bytes
from testkit.seeding import seed_images

ROOT = Path(__file__).resolve().parents[2]
NO_GRACE = RetentionSettings(batch_size=2, orphan_grace_seconds=3600)


# --- 1. a body that does not decode as its Content-Encoding says -----------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/cache/lookup"),
        ("PUT", "/api/games/ABCD/rounds/1/winner"),
        ("POST", "/api/shares"),
        ("POST", f"/api/cache/{'a' * 64}/hits"),
    ],
)
async def test_a_garbage_json_body_is_a_json_400_writing_nothing(
    client, database, encoding, method, path
):
    response = await client.request(
        method,
        path,
        data=b"not " + encoding.encode(),
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["message"]) == (
        "bad_request",
        f"the body could not be decoded as {encoding}",
    )
    assert database.count("cache_claims") == 0


@pytest.mark.parametrize("encoding", ["compress", "snappy", "gzip, foo"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/cache/lookup"), ("POST", "/api/images"), ("POST", "/api/shares")],
)
async def test_an_unknown_content_encoding_is_415_unsupported_encoding_writing_nothing(
    client, database, storage_dir, encoding, method, path
):
    response = await client.request(
        method,
        path,
        data=b'{"prompt": "A cat"}',
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_encoding"
    assert database.count("cache_claims") == 0
    assert database.count("generated_images") == 0
    assert [p for p in storage_dir.rglob("*") if p.is_file()] == []


async def test_null_is_absent_and_text_is_never_a_number_in_a_json_body(client, database):
    absent = await client.post("/api/cache/lookup", json={"prompt": "A cat", "art_style": None})
    assert absent.status == 200  # openapi.json: every optional field is nullable
    assert (await absent.json())["prompt_hash"] == prompt_hash("A cat", None)
    for field, value in (("art_style", 5), ("model", 1.5), ("size", True), ("prompt", ["x"])):
        refused = await client.post("/api/cache/lookup", json={"prompt": "A cat", field: value})
        assert refused.status == 400, field
        assert (await refused.json())["error"] == {
            "code": "invalid_field",
            "message": f"{field}: must be a string",
            "field": field,
        }
    number_as_text = await client.post(
        "/api/cache/lookup", json={"prompt": "A dog", "wait_ms": "0"}
    )
    assert number_as_text.status == 200


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_garbage_upload_body_is_a_json_400_writing_nothing(
    client, database, storage_dir, encoding
):
    response = await client.post(
        "/api/images",
        data=b"--x\r\nnot a body",
        headers={
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Encoding": encoding,
        },
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


# --- 2. zip and download names ----------------------------------------------------------------


def _time_ordered_id() -> str:
    """Like UUIDv7s of the same millisecond: the first characters are shared."""
    return str(uuid.UUID(hex="01a240e7" + uuid.uuid4().hex[8:]))


async def test_time_ordered_ids_and_shared_names_never_lose_a_picture_in_the_zip(client, upload):
    players = [(_time_ordered_id(), name) for name in (None, None, "Ana", "ana")]
    for seed, (player_id, name) in enumerate(players):
        fields = {"player_name": name} if name else {}
        response = await upload(
            image=png_bytes(seed=seed), game_code="ZIPS", player_id=player_id, **fields
        )
        assert response.status == 201, await response.text()
    share = await (await client.post("/api/shares", json={"game_code": "ZIPS"})).json()
    archive = zipfile.ZipFile(
        io.BytesIO(await (await client.get(f"/s/{share['share_id']}/images.zip")).read())
    )
    names = archive.namelist()
    assert len(names) == len(set(names)) == 4
    assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
    assert f"round-1-player-{players[0][0]}.png" in names
    assert {"round-1-Ana.png", "round-1-ana-2.png"} <= set(names) or {
        "round-1-ana.png",
        "round-1-Ana-2.png",
    } <= set(names)


# --- 3. art styles, services and models in any script -------------------------------------


@pytest.mark.parametrize("art_style", ["Art déco", "80's anime & manga", "油絵", "  水彩  "])
async def test_an_art_style_in_any_script_is_stored_and_hashed_folded(client, upload, art_style):
    response = await upload(art_style=art_style, ai_service="Midjourney 風", model="Imagen 3")
    assert response.status == 201, await response.text()
    record = await response.json()
    assert record["art_style"] == art_style.strip()
    assert record["model"] == "Imagen 3"
    assert record["prompt_hash"] == prompt_hash(
        "A cat riding a skateboard", art_style, "Imagen 3", None
    )
    again = await lookup(client, art_style=art_style.upper(), model="imagen 3")
    assert again["status"] == "hit"


async def test_an_empty_or_blank_art_style_is_no_style(client, upload):
    record = await (await upload(art_style="")).json()
    assert record["art_style"] is None
    assert record["prompt_hash"] == prompt_hash("A cat riding a skateboard", None)
    blank = await (await upload(art_style="   ", game_code="BLANK")).json()
    assert blank["art_style"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("art_style", "a" * 51), ("art_style", "water\ncolor"), ("ai_service", "dall\x07e")],
)
async def test_a_style_too_long_or_with_control_characters_is_400(upload, database, field, value):
    response = await upload(**{field: value})
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field
    assert database.count("generated_images") == 0


# --- 4. metric labels from client text are bounded -----------------------------------------


async def test_thirty_distinct_styles_add_no_series_beyond_the_known_ones_and_other(client, upload):
    for n in range(30):
        response = await upload(
            image=png_bytes(seed=n), art_style=f"style number {n}", ai_service=f"svc {n}"
        )
        assert response.status == 201
    await upload(image=png_bytes(seed=99), art_style="Watercolor", game_code="KNOWN")
    exposition = await (await client.get("/metrics")).text()
    labels = {
        (sample.labels["ai_service"], sample.labels["art_style"])
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "sidecar_images_stored_total"
    }
    assert labels == {("other", "other"), ("dall-e-3", "watercolor")}


# --- 7. a hit without the sentence (the entry has it) ----------------------------------------


async def test_a_hit_may_leave_out_the_sentence_and_one_given_must_still_match(client, upload):
    cached = await (await upload()).json()
    fields = image_fields(game_code="EFGH", completed_sentence=None)
    response = await client.post(f"/api/cache/{cached['prompt_hash']}/hits", json=fields)
    assert response.status == 201, await response.text()
    assert (await response.json())["completed_sentence"] == cached["completed_sentence"]
    wrong = await hit(client, key=cached["prompt_hash"], completed_sentence="A dog instead")
    assert wrong.status == 400
    assert (await wrong.json())["error"]["field"] == "completed_sentence"


# --- 9. player names --------------------------------------------------------------------------


async def test_a_player_name_is_kept_listed_shown_and_names_downloads(client, upload):
    name = "Zoë <b>🎨</b> \u202eevil"
    record = await (await upload(player_name=f"  {name}  ", game_code="NAMES")).json()
    assert record["player_name"] == name
    listed = await (await client.get("/api/games/NAMES/images")).json()
    assert listed["images"][0]["player_name"] == name
    hit_record = await (
        await hit(client, key=record["prompt_hash"], player_name="Ana", game_code="NAMES2")
    ).json()
    assert hit_record["player_name"] == "Ana"
    share = await (await client.post("/api/shares", json={"game_code": "NAMES"})).json()
    page = await (await client.get(f"/s/{share['share_id']}")).text()
    assert "<bdi>Zoë &lt;b&gt;🎨&lt;/b&gt; \u202eevil</bdi>" in page
    download = await client.get(f"/s/{share['share_id']}/images/{record['image_id']}")
    disposition = download.headers["Content-Disposition"]
    assert 'filename="round-1-Zo_-_b____b_-_evil.png"' in disposition  # an ASCII fallback
    assert f"filename*=UTF-8''{quote('round-1-Zoë-_b_🎨__b_-_evil.png')}" in disposition
    assert "\u202e" not in disposition


@pytest.mark.parametrize("bad", ["x" * 41, "Ana\x00", "Bo\tb"])
async def test_a_player_name_too_long_or_with_control_characters_is_400(upload, database, bad):
    response = await upload(player_name=bad)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "player_name"
    assert database.count("generated_images") == 0


# --- 6 and 8. an exact dry run, a cleanup as of an instant ---------------------------------


async def _a_night_with_reuses(client, upload, database) -> None:
    """Expired pictures, some shared by reuses that stay, some whose reuse goes too, a cache
    entry that moves and one that goes."""
    kept = await (await upload(game_code="ORIG1", completed_sentence="A shared cat")).json()
    await hit(client, key=kept["prompt_hash"], game_code="LIVE1", completed_sentence="A shared cat")
    gone = await (await upload(game_code="ORIG2", image=png_bytes(seed=5))).json()
    await hit(client, key=gone["prompt_hash"], game_code="GONE2")
    await upload(game_code="ALONE", image=png_bytes(seed=6), completed_sentence="Alone")
    database.expire_images("game_code IN ('ORIG1', 'ORIG2', 'GONE2', 'ALONE')")


async def test_a_dry_run_says_exactly_what_the_real_run_then_does(
    client, upload, database, pool, store
):
    await _a_night_with_reuses(client, upload, database)
    (expired,) = database.rows(
        "SELECT sum(g.size_bytes + coalesce(r.bytes, 0)) AS total FROM generated_images g "
        "LEFT JOIN LATERAL (SELECT sum(size_bytes) AS bytes FROM image_renditions "
        "WHERE image_id = g.image_id) r ON true WHERE g.expires_at <= now()"
    )
    dry = await run_cleanup(pool, store, NO_GRACE, dry_run=True)
    assert dry.outcome == "dry_run"
    assert database.count("generated_images") == 5  # nothing changed
    real = await run_cleanup(pool, store, NO_GRACE)
    fields = ("images_deleted", "files_deleted", "bytes_freed")
    fields += ("cache_entries_moved", "cache_entries_removed")
    assert [getattr(dry, f) for f in fields] == [getattr(real, f) for f in fields]
    # ORIG1's entry moves to its live reuse; ORIG2's (its reuse goes too) and ALONE's go.
    assert (real.images_deleted, real.cache_entries_moved, real.cache_entries_removed) == (
        4,
        1,
        2,
    )
    # The bytes ORIG1 shares with its live reuse stay; ORIG2 and GONE2 share theirs (once).
    assert 0 < real.bytes_freed < expired["total"]


def test_cleanup_as_of_an_instant_deletes_what_will_have_expired_by_then(
    sidecar_environ, tmp_path, database
):
    environ = {**sidecar_environ, "IMAGE_SIDECAR_HOST": "127.0.0.1"}
    seed_images(database.url, Path(environ["IMAGE_STORAGE_BASE_DIR"]), 3, expired=False)
    later = (datetime.now(UTC) + timedelta(days=400)).isoformat().replace("+00:00", "Z")
    dry = run_sidecar("cleanup", "--as-of", later, "--dry-run", cwd=tmp_path, environ=environ)
    assert dry.returncode == 0, dry.stderr
    predicted = json.loads(dry.stdout)
    assert (predicted["outcome"], predicted["images_deleted"]) == ("dry_run", 3)
    assert predicted["as_of"].startswith(later[:10])
    assert database.count("generated_images") == 3
    real = run_sidecar("cleanup", "--as-of", later, cwd=tmp_path, environ=environ)
    assert json.loads(real.stdout)["images_deleted"] == 3
    assert database.count("generated_images") == 0
    naive = run_sidecar("cleanup", "--as-of", "2030-01-01T00:00", cwd=tmp_path, environ=environ)
    assert naive.returncode == 2
    assert "UTC offset" in naive.stderr


# --- 10 and 11. what ships, and the docs a new user reads ---------------------------------


def test_the_readme_says_how_to_make_a_virtual_environment_and_the_client_how_to_install():
    readme = (ROOT / "README.md").read_text()
    assert "python3 -m venv .venv && . .venv/bin/activate" in readme
    client_readme = (ROOT / "clients" / "node" / "README.md").read_text()
    assert "## Install" in client_readme
    assert "npm pack" in client_readme


def test_compose_ships_the_current_postgresql_major_and_the_client_a_supported_node():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["postgres"]["image"].startswith("postgres:18")
    engines = json.loads((ROOT / "clients" / "node" / "package.json").read_text())["engines"]
    assert engines["node"] == ">=22"
