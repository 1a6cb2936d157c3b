"""The scrub finds damaged bytes before a player does, on the filesystem and on S3 (moto over
HTTP): renditions re-made, originals restored from an intact copy or taken out of service
(410, no cache hit), reported, exit 1; a second run finds nothing new."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import aiohttp
import boto3
import pytest

from testkit.cache import lookup
from testkit.helpers import image_fields, run_sidecar, uploader
from testkit.images import noise_png
from testkit.nginx import running_nginx


class Files:
    """The stored files of one backend, as an operator's accident would touch them."""

    def __init__(self, storage_dir: Path, s3_environ: dict[str, str] | None) -> None:
        self.storage_dir = storage_dir
        self.s3_environ = s3_environ
        if s3_environ is not None:
            self.s3 = boto3.client(
                "s3",
                endpoint_url=s3_environ["IMAGE_S3_ENDPOINT_URL"],
                region_name="us-east-1",
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
            self.bucket = s3_environ["IMAGE_S3_BUCKET"]

    def read(self, key: str) -> bytes:
        if self.s3_environ is None:
            return (self.storage_dir / key).read_bytes()
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def write(self, key: str, data: bytes) -> None:
        if self.s3_environ is None:
            (self.storage_dir / key).write_bytes(data)  # in place: a hard link sees it too
        else:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key: str) -> None:
        if self.s3_environ is None:
            (self.storage_dir / key).unlink()
        else:
            self.s3.delete_object(Bucket=self.bucket, Key=key)

    def flip_a_byte(self, key: str) -> None:
        data = bytearray(self.read(key))
        data[len(data) // 2] ^= 0x01
        self.write(key, bytes(data))

    def truncate(self, key: str) -> None:
        self.write(key, self.read(key)[:100])


@pytest.fixture(params=["filesystem", "s3"])
def backend(request, storage_dir, sidecar_environ):
    """(extra settings, Files, the CLI's environment) of each store type."""
    if request.param == "filesystem":
        return {}, Files(storage_dir, None), sidecar_environ
    s3_environ = request.getfixturevalue("s3_environ")
    return s3_environ, Files(storage_dir, s3_environ), {**sidecar_environ, **s3_environ}


def _key(url: str) -> str:
    return url.removeprefix("/generated-images/")


def _scrub(environ: dict[str, str], cwd: Path) -> tuple[int, dict]:
    result = run_sidecar("scrub", cwd=cwd, environ=environ, timeout=120)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


async def test_a_flipped_byte_a_deleted_and_a_truncated_rendition(
    make_client, backend, database, tmp_path
):
    settings, files, environ = backend
    client = await make_client(**settings)
    upload = uploader(client)
    records = []
    for seed, code in enumerate(("FLIP", "THUMB", "CUT")):
        response = await upload(
            image=noise_png(300, seed=seed), game_code=code, completed_sentence=code
        )
        records.append(await response.json())
    flipped, thumbless, cut = records
    files.flip_a_byte(_key(flipped["image_url"]))
    thumb = next(
        r for r in thumbless["renditions"] if (r["name"], r["format"]) == ("thumb", "webp")
    )
    files.delete(_key(thumb["url"]))
    large = next(r for r in cut["renditions"] if (r["name"], r["format"]) == ("large", "webp"))
    files.truncate(_key(large["url"]))

    status, summary = _scrub(environ, tmp_path)
    assert status == 1, summary  # the flipped original could not be repaired
    assert summary["outcome"] == "success"
    assert (summary["missing"], summary["damaged"], summary["repaired"]) == (1, 2, 2)
    assert summary["unrecoverable"] == [
        {"image_id": flipped["image_id"], "key": flipped["image_path"]}
    ]
    # Read: the flipped original alone (its renditions wait for it), the other two images'
    # files but the deleted thumb.
    files_per_image = 1 + len(flipped["renditions"])
    assert summary["files_checked"] == 1 + 2 * files_per_image - 1

    # The original is out of service: 410, and no cache hit for its prompt.
    gone = await client.get(flipped["image_url"])
    assert gone.status == 410
    assert (await gone.json())["error"]["code"] == "image_damaged"
    assert (await lookup(client, prompt="FLIP"))["status"] == "miss"
    # The renditions were made again: served, and their bytes are what their rows record.
    for rendition in (thumb, large):
        served = await client.get(rendition["url"], allow_redirects=True)
        assert served.status == 200
        data = await served.read()
        recorded = database.rows(
            "SELECT size_bytes, sha256 FROM image_renditions WHERE image_path = %s",
            _key(rendition["url"]),
        )[0]
        assert (len(data), hashlib.sha256(data).hexdigest()) == (
            recorded["size_bytes"],
            recorded["sha256"],
        )

    status, again = _scrub(environ, tmp_path)
    assert status == 0
    assert (again["missing"], again["damaged"], again["repaired"], again["unrecoverable"]) == (
        0,
        0,
        0,
        [],
    )


async def test_a_damaged_original_is_restored_from_an_intact_copy_on_s3(
    make_client, s3_environ, sidecar_environ, database, tmp_path
):
    client = await make_client(**s3_environ)
    files = Files(Path(), s3_environ)
    original = await (await uploader(client)(image=noise_png(200), game_code="ORIG")).json()
    hits = f"/api/cache/{original['prompt_hash']}/hits"
    reuse = await (await client.post(hits, json=image_fields(game_code="REUSE"))).json()
    assert reuse["image_path"] != original["image_path"]  # its own object: a server-side copy
    good = files.read(original["image_path"])
    files.flip_a_byte(original["image_path"])

    status, summary = _scrub({**sidecar_environ, **s3_environ}, tmp_path)
    assert status == 0, summary
    assert (summary["damaged"], summary["repaired"], summary["unrecoverable"]) == (1, 1, [])
    assert files.read(original["image_path"]) == good
    assert (await lookup(client))["status"] == "hit"


async def test_a_scrub_goes_on_where_an_interrupted_one_stopped_and_one_runs_at_a_time(
    client, database
):
    upload = uploader(client)
    for n in range(4):
        assert (await upload(image=noise_png(40, seed=n))).status == 201
    ids = sorted(row["image_id"] for row in database.rows("SELECT image_id FROM generated_images"))
    database.rows(
        "INSERT INTO scrub_state (resume_after) VALUES (%s) "
        "ON CONFLICT (only_row) DO UPDATE SET resume_after = EXCLUDED.resume_after RETURNING 1",
        ids[1],
    )

    response = await client.post("/api/admin/scrub")
    assert response.status == 200
    summary = await response.json()
    assert summary["resumed_after"] == str(ids[1])
    files_per_image = summary["files_checked"] // 2
    assert summary["files_checked"] == 2 * files_per_image  # the last two images only
    full = await (await client.post("/api/admin/scrub")).json()
    assert "resumed_after" not in full
    assert full["files_checked"] == 4 * files_per_image

    database.rows(  # another replica's run
        "UPDATE scrub_state SET holder = gen_random_uuid(), "
        "lease_expires_at = now() + interval '1 minute' RETURNING 1"
    )
    skipped = await (await client.post("/api/admin/scrub")).json()
    assert skipped["outcome"] == "skipped"
    assert skipped["files_checked"] == 0


async def test_nginx_answers_410_for_an_original_out_of_service_and_404_for_none(
    client, storage_dir, sidecar_environ, tmp_path
):
    record = await (await uploader(client)(image=noise_png(100))).json()
    Files(storage_dir, None).flip_a_byte(record["image_path"])
    status, _ = _scrub(sidecar_environ, tmp_path)
    assert status == 1
    unknown = record["image_url"].replace(record["player_id"], "0" * 8 + record["player_id"][8:])
    async with (
        running_nginx(tmp_path, storage_dir, sidecar_port=client.port) as base,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(base + record["image_url"]) as gone:
            assert gone.status == 410
            assert (await gone.json())["error"]["code"] == "image_damaged"
            assert "immutable" not in gone.headers.get("Cache-Control", "")
        async with session.get(base + unknown) as missing:
            assert missing.status == 404


async def test_a_quarantined_file_is_never_served_and_goes_with_its_images_purge(
    client, storage_dir, sidecar_environ, tmp_path, database
):
    record = await (await uploader(client)(image=noise_png(90), game_code="SICK")).json()
    Files(storage_dir, None).flip_a_byte(record["image_path"])
    status, _ = _scrub(sidecar_environ, tmp_path)
    assert status == 1
    quarantined = storage_dir / "quarantine" / record["image_path"]
    assert quarantined.exists()
    for url in (
        f"/generated-images/quarantine/{record['image_path']}",
        f"/generated-images/quarantine/{record['image_path']}".replace(".png", ".thumb.webp"),
    ):
        response = await client.get(url)
        assert response.status == 404, url
        assert (await response.json())["error"]["code"] == "not_found"
    assert (await client.delete("/api/games/SICK")).status == 200
    assert not quarantined.exists()
    assert database.count("generated_images") == 0
