"""Replay and sharing: the judge's pick, share links, the gallery page, downloads and the zip."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from html.parser import HTMLParser

import pytest

from image_sidecar.config import RetentionSettings
from image_sidecar.lifecycle.cleanup import run_cleanup
from testkit.database import Database
from testkit.helpers import game_id_of, round_id_of, uploader
from testkit.images import png_bytes

NO_GRACE = RetentionSettings(batch_size=50, orphan_grace_seconds=1)
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)> \u202eevil\u202c'


async def play(upload, game_code="PARTY", rounds=2, players=2, sentence=None, **fields):
    """Upload a game: every player's picture in every round; the records by (round, player)."""
    player_ids = [str(uuid.uuid4()) for _ in range(players)]
    played = {}
    for round_number in range(1, rounds + 1):
        for index, player_id in enumerate(player_ids):
            response = await upload(
                image=png_bytes(seed=hash((game_code, round_number, index)) % 1000, size=24),
                game_code=game_code,
                round_number=round_number,
                player_id=player_id,
                completed_sentence=sentence or f"Round {round_number}, player {index + 1}",
                **fields,
            )
            assert response.status == 201, await response.text()
            played[round_number, index] = await response.json()
    return played


async def share(client, **body):
    response = await client.post("/api/shares", json={"game_code": "PARTY", **body})
    assert response.status == 201, await response.text()
    return await response.json()


class Page(HTMLParser):
    """What a gallery page shows: its meta tags, figures, images and links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.figures: list[dict[str, str]] = []
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.scripts = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "meta":
            key = attributes.get("property") or attributes.get("name")
            if key:
                self.meta[key] = attributes.get("content", "")
        elif tag == "figure":
            self.figures.append(attributes)
        elif tag == "img":
            self.images.append(attributes)
        elif tag == "a":
            self.links.append(attributes.get("href", ""))
        elif tag == "script":
            self.scripts += 1


async def test_the_judges_pick_is_marked_in_listings_and_can_be_changed(client, upload):
    played = await play(upload)
    first, second = played[1, 0], played[1, 1]
    response = await client.put(
        "/api/games/PARTY/rounds/1/winner", json={"player_id": second["player_id"]}
    )
    assert response.status == 200, await response.text()
    winner = await response.json()
    assert (winner["image_id"], winner["round_number"]) == (second["image_id"], 1)
    listed = (await (await client.get("/api/games/PARTY/rounds/1/images")).json())["images"]
    assert {image["image_id"]: image["is_winner"] for image in listed} == {
        first["image_id"]: False,
        second["image_id"]: True,
    }
    await client.put("/api/games/PARTY/rounds/1/winner", json={"player_id": first["player_id"]})
    listed = (await (await client.get("/api/games/PARTY/rounds/1/images")).json())["images"]
    assert [image["image_id"] for image in listed if image["is_winner"]] == [first["image_id"]]


async def test_a_winner_without_a_picture_in_the_round_is_404_naming_the_player(
    client, upload, database: Database
):
    await play(upload, rounds=1)
    body = {"player_id": "00000000-0000-4000-8000-000000000000"}
    response = await client.put("/api/games/PARTY/rounds/1/winner", json=body)
    assert response.status == 404
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("not_found", "player_id")
    assert database.count("round_winners") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"player_id": "not-a-uuid"}, "player_id"),
        ({}, "player_id"),
        ({"player_id": "00000000-0000-4000-8000-000000000000", "judge": "me"}, "judge"),
    ],
)
async def test_a_bad_winner_is_400_naming_the_field(
    client, upload, database: Database, body, field
):
    await play(upload, rounds=1)
    response = await client.put("/api/games/PARTY/rounds/1/winner", json=body)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field
    assert database.count("round_winners") == 0


async def test_a_share_answers_an_unguessable_id_and_its_public_url(client, upload):
    await play(upload, rounds=1)
    answer = await share(client)
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", answer["share_id"])  # 144 random bits
    assert answer["url"].endswith(f"/s/{answer['share_id']}")
    assert answer["game_id"] == game_id_of("PARTY")
    another = await share(client)
    assert another["share_id"] != answer["share_id"]


async def test_the_share_url_uses_the_configured_public_base(make_client):
    client = await make_client(IMAGE_SHARE_BASE_URL="https://pictures.example.com")
    await play(uploader(client), rounds=1, players=1)
    answer = await share(client)
    assert answer["url"] == f"https://pictures.example.com/s/{answer['share_id']}"


@pytest.mark.parametrize("body", [{"game_code": "EMPTY"}, {"round_number": 7}])
async def test_a_share_of_a_game_or_round_without_pictures_is_404_and_writes_nothing(
    client, upload, database: Database, body
):
    await play(upload, rounds=1)
    response = await client.post("/api/shares", json={"game_code": "PARTY", **body})
    assert response.status == 404
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("not_found", "game_code")
    assert database.count("shares") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in_days": 366}, "expires_in_days"),
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"game_code": "../x"}, "game_code"),
        ({"game_id": "nope"}, "game_id"),
        ({"password": "x"}, "password"),
    ],
)
async def test_a_bad_share_is_400_naming_the_field_and_writes_nothing(
    client, upload, database: Database, body, field
):
    await play(upload, rounds=1)
    response = await client.post("/api/shares", json={"game_code": "PARTY", **body})
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field
    assert database.count("shares") == 0


async def test_the_gallery_shows_every_picture_by_round_with_captions_and_winners(client, upload):
    played = await play(upload, rounds=2, players=2)
    await client.put(
        "/api/games/PARTY/rounds/2/winner", json={"player_id": played[2, 1]["player_id"]}
    )
    answer = await share(client)
    response = await client.get(f"/s/{answer['share_id']}")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    page = Page(html)
    assert [figure["data-image-id"] for figure in page.figures] == [
        played[key]["image_id"] for key in sorted(played)
    ]
    assert [f["data-image-id"] for f in page.figures if "winner" in f["class"]] == [
        played[2, 1]["image_id"]
    ]
    assert "Round 1, player 2" in html
    assert "Round 2" in html
    thumbs = [image["src"] for image in page.images]
    assert all(src.endswith(".thumb.webp") for src in thumbs)
    assert all("large.webp 1024w" in image["srcset"] or "large.webp" in image["srcset"]
               for image in page.images)  # fmt: skip
    assert f"/s/{answer['share_id']}/images.zip" in page.links
    assert page.scripts == 0


async def test_link_previews_carry_the_winners_sentence_and_an_absolute_large_picture(
    make_client,
):
    client = await make_client(IMAGE_SHARE_BASE_URL="https://pictures.example.com")
    upload = uploader(client)
    first = await (await upload(game_code="PARTY", completed_sentence="The first one")).json()
    won = await (
        await upload(game_code="PARTY", completed_sentence="The funniest one", image=png_bytes(7))
    ).json()
    await client.put("/api/games/PARTY/rounds/1/winner", json={"player_id": won["player_id"]})
    answer = await share(client, round_number=1)
    page = Page(await (await client.get(f"/s/{answer['share_id']}")).text())
    large = next(r for r in won["renditions"] if (r["name"], r["format"]) == ("large", "webp"))
    assert page.meta["og:description"] == "The funniest one"
    assert page.meta["og:image"] == "https://pictures.example.com" + large["url"]
    assert (page.meta["og:image:width"], page.meta["og:image:height"]) == (
        str(large["width"]),
        str(large["height"]),
    )
    assert page.meta["og:url"] == answer["url"]
    assert page.meta["twitter:card"] == "summary_large_image"
    assert page.meta["robots"] == "noindex, nofollow"
    assert "round 1" in page.meta["og:title"]
    assert first["image_id"] != won["image_id"]


async def test_player_text_is_escaped_and_isolated_and_the_page_is_locked_down(client, upload):
    await play(upload, rounds=1, players=1, sentence=HOSTILE)
    answer = await share(client)
    response = await client.get(f"/s/{answer['share_id']}")
    html = await response.text()
    assert "<script>" not in html
    assert "<img src=x" not in html
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    )
    assert Page(html).scripts == 0
    assert 'dir="auto"' in html  # the right-to-left override stays inside its caption
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"


async def test_unknown_revoked_and_expired_shares_are_the_same_404(
    client, upload, database: Database
):
    await play(upload, rounds=1)
    revoked, expired = await share(client), await share(client)
    assert (await client.delete(f"/api/shares/{revoked['share_id']}")).status == 204
    database.rows(
        "UPDATE shares SET expires_at = now() - interval '1 second' WHERE share_id = %s",
        expired["share_id"],
    )
    answers = []
    for share_id in ("A" * 24, revoked["share_id"], expired["share_id"], "x"):
        for suffix in ("", "/images.zip", f"/images/{uuid.uuid4()}"):
            response = await client.get(f"/s/{share_id}{suffix}")
            answers.append((response.status, await response.text()))
    assert {status for status, _ in answers} == {404}
    assert len({body for _, body in answers}) == 1
    assert (await client.delete(f"/api/shares/{revoked['share_id']}")).status == 404


async def test_a_download_is_the_original_as_an_attachment_named_by_round_and_player(
    client, upload
):
    played = await play(upload, rounds=1, players=1)
    record = played[1, 0]
    answer = await share(client)
    response = await client.get(f"/s/{answer['share_id']}/images/{record['image_id']}")
    assert response.status == 200
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="round-1-player-{record["player_id"]}.png"'
    )
    original = await (await client.get(record["image_url"])).read()
    assert await response.read() == original


async def test_the_zip_holds_every_original_byte_for_byte(client, upload):
    played = await play(upload, rounds=2, players=3)
    answer = await share(client)
    response = await client.get(f"/s/{answer['share_id']}/images.zip")
    assert response.status == 200
    assert response.content_type == "application/zip"
    assert "picture-this-PARTY.zip" in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    assert archive.testzip() is None
    assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
    expected = {}
    for record in played.values():
        name = f"round-{record['round_number']}-player-{record['player_id']}.png"
        expected[name] = await (await client.get(record["image_url"])).read()
    assert {name: archive.read(name) for name in archive.namelist()} == expected


async def test_a_purge_removes_pictures_from_the_share_and_an_empty_share_is_404(client, upload):
    played = await play(upload, rounds=1, players=2)
    answer = await share(client)
    purged = await client.delete(f"/api/games/PARTY/players/{played[1, 0]['player_id']}/images")
    assert purged.status == 200, await purged.text()
    archive = zipfile.ZipFile(io.BytesIO(await (await client.get(
        f"/s/{answer['share_id']}/images.zip")).read()))  # fmt: skip
    assert len(archive.namelist()) == 1
    assert (await client.delete("/api/games/PARTY")).status == 200
    assert (await client.get(f"/s/{answer['share_id']}")).status == 404
    assert (await client.get(f"/s/{answer['share_id']}/images.zip")).status == 404


async def test_shared_pictures_outlive_their_expiry_until_the_share_ends(
    client, upload, database: Database, pool, store
):
    await play(upload, game_code="PARTY", rounds=2, players=1)
    await play(upload, game_code="OTHER", rounds=1, players=1)
    answer = await share(client, round_number=1)
    database.expire_images()
    report = await run_cleanup(pool, store, NO_GRACE)
    assert report.images_deleted == 2  # round 2 of PARTY and OTHER; the shared round stays
    assert (await client.get(f"/s/{answer['share_id']}")).status == 200
    assert (await client.delete(f"/api/shares/{answer['share_id']}")).status == 204
    report = await run_cleanup(pool, store, NO_GRACE)
    assert report.images_deleted == 1
    assert database.count("generated_images") == 0


async def test_an_expired_share_no_longer_keeps_its_pictures(
    client, upload, database: Database, pool, store
):
    await play(upload, rounds=1, players=2)
    await share(client)
    database.expire_images()
    assert (await run_cleanup(pool, store, NO_GRACE)).images_deleted == 0
    database.rows("UPDATE shares SET expires_at = now() - interval '1 second'")
    assert (await run_cleanup(pool, store, NO_GRACE)).images_deleted == 2


async def test_a_share_never_shows_another_game_that_recycled_the_code(client, upload):
    await play(upload, game_code="PARTY", rounds=1, players=1)
    answer = await share(client)
    second_game = str(uuid.uuid4())
    newer = await upload(
        game_code="PARTY", game_id=second_game, round_id=round_id_of(second_game, 1)
    )
    assert newer.status == 201
    page = Page(await (await client.get(f"/s/{answer['share_id']}")).text())
    assert len(page.figures) == 1
    assert (await newer.json())["image_id"] not in {f["data-image-id"] for f in page.figures}
