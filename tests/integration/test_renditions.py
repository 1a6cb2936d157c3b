"""Web renditions: every upload gets small WebP (and AVIF) versions and a placeholder; they are
served like originals, shared by reuses, and go with their image."""

from __future__ import annotations

import io
import json

import blurhash
import pytest
from PIL import Image, ImageCms

from image_sidecar import db
from image_sidecar.config import RetentionSettings
from image_sidecar.db import images as image_rows
from image_sidecar.images.decoding import rendition_formats
from image_sidecar.lifecycle.cleanup import run_cleanup
from testkit.helpers import image_fields, path_of, run_sidecar, storage_files, uploader
from testkit.images import DECODABLE, noise_png, save_as
from testkit.lookalikes import photo_like

FORMATS = rendition_formats()


def _opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_a_1024_png_gets_thumb_and_large_renditions_and_a_placeholder(client, upload):
    original = noise_png(1024)
    response = await upload(image=original)
    assert response.status == 201
    record = await response.json()
    assert (record["width"], record["height"]) == (1024, 1024)
    assert blurhash.components(record["placeholder"]) in ((4, 3), (3, 4))
    made = {(r["name"], r["format"]) for r in record["renditions"]}
    assert made == {(name, fmt) for name in ("thumb", "large") for fmt in FORMATS}
    for rendition in record["renditions"]:
        served = await client.get(rendition["url"])
        assert served.status == 200
        assert served.headers["Content-Type"] == rendition["content_type"]
        assert served.headers["Cache-Control"] == "public, max-age=604800, immutable"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        data = await served.read()
        assert len(data) == rendition["size_bytes"]
        image = _opened(data)
        assert image.format.lower() == rendition["format"]
        side = 256 if rendition["name"] == "thumb" else 1024
        assert image.size == (rendition["width"], rendition["height"]) == (side, side)
    # the original is what was uploaded, byte for byte
    assert await (await client.get(record["image_url"])).read() == original


async def test_a_small_picture_is_never_upscaled(upload):
    record = await (await upload(image=noise_png(100))).json()
    assert {(r["width"], r["height"]) for r in record["renditions"]} == {(100, 100)}


async def test_renditions_keep_transparency_and_turn_the_picture_upright(client, upload):
    alpha = await (await upload(image=DECODABLE["PNG with alpha"][0], game_code="ALPHA")).json()
    for rendition in alpha["renditions"]:
        image = _opened(await (await client.get(rendition["url"])).read())
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == pytest.approx(128, abs=2)
    turned = await (
        await upload(image=DECODABLE["JPEG turned by EXIF"][0], game_code="TURN")
    ).json()
    for rendition in turned["renditions"]:
        image = _opened(await (await client.get(rendition["url"])).read())
        assert image.size == (4, 8)


@pytest.mark.parametrize("name", ["CMYK JPEG", "16-bit PNG", "animated WebP (its first frame)"])
async def test_unusual_pictures_get_rgb_renditions(client, upload, name):
    data, size = DECODABLE[name]
    record = await (await upload(image=data)).json()
    for rendition in record["renditions"]:
        image = _opened(await (await client.get(rendition["url"])).read())
        assert image.mode == "RGB"
        assert image.size == size


async def test_a_cmyk_jpeg_is_converted_to_srgb_colours(client, upload):
    red = save_as(Image.new("RGB", (16, 16), (220, 20, 20)).convert("CMYK"), "JPEG", quality=95)
    record = await (await upload(image=red)).json()
    thumb = next(r for r in record["renditions"] if r["format"] == "webp")
    r, g, b = _opened(await (await client.get(thumb["url"])).read()).getpixel((8, 8))
    assert (r > 150, g < 90, b < 90) == (True, True, True)


async def test_a_reuse_shares_the_renditions_bytes(client, upload, storage_dir):
    original = await (await upload(image=noise_png(300), game_code="ORIG")).json()
    fields = image_fields(game_code="REUSE")
    reuse = await (
        await client.post(f"/api/cache/{original['prompt_hash']}/hits", json=fields)
    ).json()
    assert reuse["placeholder"] == original["placeholder"]
    assert len(reuse["renditions"]) == len(original["renditions"])
    for mine, theirs in zip(reuse["renditions"], original["renditions"], strict=True):
        assert mine["url"] != theirs["url"]
        mine_path = path_of(storage_dir, {"image_url": mine["url"]})
        theirs_path = path_of(storage_dir, {"image_url": theirs["url"]})
        assert mine_path.stat().st_ino == theirs_path.stat().st_ino  # a hard link, not a copy


async def test_cleanup_and_purge_remove_the_renditions(
    client, upload, database, storage_dir, pool, store
):
    await upload(image=noise_png(50), game_code="GONE")
    await upload(image=noise_png(60, seed=1), game_code="PURGED")
    assert len(storage_files(storage_dir)) == 2 * (1 + 2 * len(FORMATS))
    database.expire_images("game_code = %s", "GONE")
    report = await run_cleanup(pool, store, RetentionSettings())
    assert report.files_deleted == 1 + 2 * len(FORMATS)
    assert (await client.delete("/api/games/PURGED")).status == 200
    assert storage_files(storage_dir) == []
    assert database.count("image_renditions") == 0


async def test_the_orphan_sweep_never_takes_a_live_rendition(upload, storage_dir, pool, store):
    record = await (await upload(image=noise_png(40))).json()
    report = await run_cleanup(pool, store, RetentionSettings(orphan_grace_seconds=0))
    assert report.orphans_swept == 0
    assert len(storage_files(storage_dir)) == 1 + len(record["renditions"])


async def test_stats_say_which_rendition_formats_this_sidecar_makes(client):
    stats = await (await client.get("/api/stats")).json()
    assert stats["rendition_formats"] == list(FORMATS)


def _as_before_renditions(database, storage_dir, record) -> None:
    """Make an image look as if it was stored before renditions existed."""
    for rendition in record["renditions"]:
        path_of(storage_dir, {"image_url": rendition["url"]}).unlink()
    database.rows("DELETE FROM image_renditions WHERE image_id = %s", record["image_id"])
    database.rows(
        "UPDATE generated_images SET width = NULL, height = NULL, placeholder = NULL "
        "WHERE image_id = %s",
        record["image_id"],
    )


async def test_the_backfills_walk_finds_each_unrendered_image_once_batch_after_batch(
    upload, database, storage_dir, pool
):
    records = [
        await (await upload(image=noise_png(40, seed=seed), game_code=f"W{seed}")).json()
        for seed in range(7)
    ]
    unrendered = sorted(record["image_id"] for record in records[::2])
    for record in records[::2]:
        _as_before_renditions(database, storage_dir, record)

    walked, after = [], None
    while True:
        async with db.cursor(pool) as cur:
            batch = await image_rows.without_renditions(cur, after, 1)
        if not batch:
            break
        walked += [str(image.image_id) for image in batch]
        after = batch[-1].image_id
    assert walked == unrendered


async def test_the_backfill_gives_older_images_renditions_and_can_run_again(
    client, upload, database, storage_dir, sidecar_environ, tmp_path
):
    original = await (await upload(image=noise_png(300), game_code="OLD")).json()
    hits = f"/api/cache/{original['prompt_hash']}/hits"
    reuse = await (await client.post(hits, json=image_fields(game_code="OLDREUSE"))).json()
    broken = await (await upload(image=noise_png(30, seed=2), game_code="BROKEN")).json()
    for record in (original, reuse, broken):
        _as_before_renditions(database, storage_dir, record)
    path_of(storage_dir, broken).unlink()  # its original is gone: reported, skipped

    result = run_sidecar("renditions", "--backfill", cwd=tmp_path, environ=sidecar_environ)
    assert result.returncode == 1, result.stderr  # one image could not be done
    assert result.stdout, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["images"], summary["rendered"], summary["linked"]) == (2, 1, 1)
    assert summary["failed_keys"] == [broken["image_path"]]

    listed = (await (await client.get("/api/games/OLD/images")).json())["images"][0]
    assert (listed["width"], listed["height"]) == (300, 300)
    assert listed["placeholder"]
    assert {(r["name"], r["format"]) for r in listed["renditions"]} == {
        (name, fmt) for name in ("thumb", "large") for fmt in FORMATS
    }
    shared = (await (await client.get("/api/games/OLDREUSE/images")).json())["images"][0]
    for mine, theirs in zip(shared["renditions"], listed["renditions"], strict=True):
        mine_path = path_of(storage_dir, {"image_url": mine["url"]})
        theirs_path = path_of(storage_dir, {"image_url": theirs["url"]})
        assert mine_path.stat().st_ino == theirs_path.stat().st_ino

    again = run_sidecar("renditions", "--backfill", cwd=tmp_path, environ=sidecar_environ)
    assert json.loads(again.stdout)["images"] == 0  # nothing left but the broken one


@pytest.mark.parametrize(("setting", "made"), [("webp", {"webp"}), ("", set())])
async def test_the_rendition_formats_are_a_setting(make_client, setting, made):
    client = await make_client(IMAGE_RENDITION_FORMATS=setting)
    record = await (await uploader(client)(image=noise_png(64))).json()
    assert {r["format"] for r in record["renditions"]} == made
    assert (record["placeholder"] is None) == (not made)


def _large_webp(record: dict) -> dict:
    return next(r for r in record["renditions"] if (r["name"], r["format"]) == ("large", "webp"))


async def test_a_web_ready_webp_original_is_its_own_large_webp(client, upload, storage_dir):
    # Encoded as an AI service would (quality 90, its slowest method): a new encoding by the
    # sidecar (quality 80, its fastest) could not give these bytes back.
    original = save_as(photo_like(3, 768), "WEBP", quality=90, method=6)
    record = await (await upload(image=original)).json()
    large = _large_webp(record)
    assert (large["width"], large["height"], large["size_bytes"]) == (768, 768, len(original))
    served = await client.get(large["url"])
    assert served.headers["Content-Type"] == "image/webp"
    assert await served.read() == original
    # The same file: a hard link of the original, not its bytes written again.
    linked = path_of(storage_dir, {"image_url": large["url"]}).stat()
    assert linked.st_ino == path_of(storage_dir, record).stat().st_ino


async def test_a_web_ready_large_made_on_demand_is_a_link_of_the_original(make_client, storage_dir):
    client = await make_client(IMAGE_RENDITIONS_AT_UPLOAD="")
    original = save_as(photo_like(8, 640), "WEBP", quality=90, method=6)
    record = await (await uploader(client)(image=original)).json()
    large = _large_webp(record)
    assert large["size_bytes"] is None  # not made yet
    assert await (await client.get(large["url"])).read() == original
    linked = path_of(storage_dir, {"image_url": large["url"]}).stat()
    assert linked.st_ino == path_of(storage_dir, record).stat().st_ino
    path = f"/api/games/{record['game_code']}/rounds/{record['round_number']}/images"
    (listed,) = (await (await client.get(path)).json())["images"]
    assert _large_webp(listed)["size_bytes"] == len(original)


@pytest.mark.parametrize(
    ("why", "picture", "settings"),
    [
        ("a PNG", lambda: save_as(photo_like(4, 1024), "PNG"), {}),
        ("larger than large", lambda: save_as(photo_like(5, 1280), "WEBP", quality=90), {}),
        (
            "over the byte budget",
            lambda: save_as(photo_like(6, 768), "WEBP", quality=90),
            {"IMAGE_WEB_READY_MAX_BYTES": "1000"},
        ),
        (
            "with a colour profile",
            lambda: save_as(
                photo_like(7, 768),
                "WEBP",
                quality=90,
                icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
            ),
            {},
        ),
    ],
)
async def test_an_original_that_is_not_web_ready_gets_a_large_webp_of_its_own(
    make_client, why, picture, settings
):
    client = await make_client(**settings)
    original = picture()
    record = await (await uploader(client)(image=original)).json()
    large = _large_webp(record)
    data = await (await client.get(large["url"])).read()
    assert data != original, why
    assert _opened(data).format == "WEBP"
    assert max(large["width"], large["height"]) <= 1024
    if why == "a PNG":  # the judge screen's byte ratio
        assert len(data) <= len(original) / 5
