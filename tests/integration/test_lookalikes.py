"""A takedown also stops the picture's look-alikes: resized, re-encoded, brighter or darker,
cropped a little, noisy copies are 422 blocked_content on every replica; `?similar=true` also
removes the stored look-alikes and names them; nothing unrelated is touched."""

from __future__ import annotations

import hashlib
import json

from PIL import Image

from testkit.cache import lookup
from testkit.helpers import image_fields, run_sidecar, storage_files, uploader
from testkit.images import png_bytes
from testkit.lookalikes import as_jpeg, as_png, edited_copies, photo_like

PICTURE = photo_like(seed=7, side=512)
ORIGINAL = as_png(PICTURE)
ORIGINAL_SHA256 = hashlib.sha256(ORIGINAL).hexdigest()
EDITED = edited_copies(PICTURE)


async def _take_down(client, **params: str) -> dict:
    response = await client.delete(f"/api/images/by-sha256/{ORIGINAL_SHA256}", params=params)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_every_edited_copy_of_a_picture_taken_down_is_refused_and_others_are_not(
    make_client, database
):
    # Two replicas on one database: the takedown on one, the uploads on the other, whose copy
    # of the blocklist must catch up.
    moderator, game = await make_client(), await make_client()
    upload = uploader(game)
    assert (await upload(image=ORIGINAL, game_code="FIRST")).status == 201
    assert (await upload(image=as_png(photo_like(seed=1, side=512)))).status == 201  # warm
    answer = await _take_down(moderator, reason="reported by players")
    assert answer["lookalike_image_ids"] == []

    for name, data in EDITED.items():
        refused = await upload(image=data, game_code="AGAIN")
        assert refused.status == 422, name
        error = (await refused.json())["error"]
        assert error["code"] == "blocked_content", name
        assert "looks like a picture that was taken down" in error["message"], name
    assert (
        database.rows("SELECT count(*) AS n FROM generated_images WHERE game_code = 'AGAIN'")[0][
            "n"
        ]
        == 0
    )

    for seed in range(100, 120):
        unrelated = await upload(image=as_jpeg(photo_like(seed, side=512), 85))
        assert unrelated.status == 201, seed


async def test_similar_true_removes_and_names_the_stored_lookalikes_and_nothing_else(
    client, database, storage_dir
):
    upload = uploader(client)
    original = await (await upload(image=ORIGINAL, game_code="ORIG")).json()
    copies = []
    for game_code, edit in (("JPEG", "JPEG 90"), ("CROP", "3% cropped"), ("HALF", "half size")):
        sentence = f"a picture for {game_code}"
        response = await upload(
            image=EDITED[edit], game_code=game_code, completed_sentence=sentence
        )
        assert response.status == 201
        copies.append(await response.json())
    unrelated = await (
        await upload(image=as_png(photo_like(seed=8, side=512)), game_code="KEEP")
    ).json()

    answer = await _take_down(client, similar="true")
    lookalike_ids = sorted(copy["image_id"] for copy in copies)
    assert answer["lookalike_image_ids"] == lookalike_ids
    assert answer["image_ids"] == sorted([original["image_id"], *lookalike_ids])
    assert answer["images_deleted"] == 4
    assert {
        row["image_id"] for row in database.rows("SELECT image_id::text FROM generated_images")
    } == {unrelated["image_id"]}
    assert all(path.startswith("game-KEEP-") for path in storage_files(storage_dir))
    for copy in copies:
        assert copy["image_url"] in answer["urls"]
    # Their cache entries went with them, and their bytes are blocked exactly too.
    assert (await lookup(client, prompt="a picture for JPEG", art_style="watercolor"))[
        "status"
    ] == "miss"
    assert database.count("blocked_content") == 4


async def test_without_similar_the_stored_lookalikes_are_named_and_kept(client, database):
    upload = uploader(client)
    await upload(image=ORIGINAL, game_code="ORIG")
    kept = await (await upload(image=EDITED["JPEG 60"], game_code="JPEG")).json()
    answer = await _take_down(client)
    assert answer["lookalike_image_ids"] == [kept["image_id"]]
    assert kept["image_id"] not in answer["image_ids"]
    assert database.count("generated_images") == 1
    # ...and a new upload of the same look-alike is refused all the same.
    assert (await upload(image=EDITED["JPEG 60"], game_code="AGAIN")).status == 422


async def test_the_backfill_gives_older_images_their_perceptual_hash(
    client, database, sidecar_environ, tmp_path
):
    upload = uploader(client)
    old = await (await upload(image=EDITED["JPEG 90"], game_code="OLD")).json()
    await client.post(f"/api/cache/{old['prompt_hash']}/hits", json=image_fields(game_code="REUSE"))
    database.rows("UPDATE generated_images SET perceptual_hash = NULL RETURNING 1")
    result = run_sidecar("renditions", "--backfill", cwd=tmp_path, environ=sidecar_environ)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hashed"] == 2
    hashes = database.rows("SELECT DISTINCT perceptual_hash::text AS bits FROM generated_images")
    assert [row["bits"] is not None for row in hashes] == [True]

    await upload(image=ORIGINAL, game_code="ORIG")
    answer = await _take_down(client)
    assert len(answer["lookalike_image_ids"]) == 2  # found as look-alikes, thanks to the hash


async def test_pictures_too_small_or_flat_to_have_a_look_are_blocked_by_their_bytes_only(
    client, database
):
    upload = uploader(client)
    red, blue = (as_png(Image.new("RGB", (512, 512), colour)) for colour in ("red", "blue"))
    for taken_down, other in ((png_bytes(seed=1), png_bytes(seed=2)), (red, blue)):
        assert (await upload(image=taken_down)).status == 201
        sha256 = hashlib.sha256(taken_down).hexdigest()
        assert (await client.delete(f"/api/images/by-sha256/{sha256}")).status == 200
        assert (await upload(image=taken_down)).status == 422
        assert (await upload(image=other)).status == 201
    assert (
        database.rows("SELECT perceptual_hash FROM generated_images")
        == [{"perceptual_hash": None}] * 2
    )
