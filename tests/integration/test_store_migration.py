"""`image-sidecar migrate-store`: every live image and its renditions copied to the other store,
verified, resumable after a kill, idempotent, and the source left as it was."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from testkit.database import Database
from testkit.helpers import storage_files, uploader
from testkit.images import drawing_png, png_bytes
from testkit.seeding import seed_images


def migrate_store(environ, cwd, *args, wait=True):
    command = [sys.executable, "-m", "image_sidecar", "migrate-store", *args]
    if not wait:
        return subprocess.Popen(command, env=environ, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
    done = subprocess.run(command, env=environ, cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    return done.returncode, json.loads(done.stdout) if done.stdout else None, done.stderr


def kill_part_way(process: subprocess.Popen[str], database: Database) -> None:
    """SIGKILL once a hundred files are copied (no event loop of the test runs meanwhile)."""
    deadline = time.monotonic() + 120
    while database.count("store_copies") < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()


@pytest.fixture
def both_stores(sidecar_environ, s3_environ):
    """The filesystem configured (the source), with the S3 bucket's settings beside it."""
    return {**sidecar_environ, **{k: v for k, v in s3_environ.items() if k != "IMAGE_STORAGE_TYPE"}}


async def served_from_s3(make_client, s3_environ, records):
    """Every record's original and renditions as the sidecar serves them from S3."""
    client = await make_client(**s3_environ)
    served = {}
    for record in records:
        for url in [record["image_url"], *(r["url"] for r in record["renditions"])]:
            response = await client.get(url)  # a redirect to the bucket, followed
            assert response.status == 200, url
            served[url] = await response.read()
    return served


async def test_every_image_and_rendition_moves_to_s3_verified_and_the_source_stays(
    both_stores, s3_environ, upload, storage_dir, make_client, tmp_path
):
    records = []
    for seed in range(4):
        response = await upload(image=drawing_png(seed, side=300))
        records.append(await response.json())
    before = {path: (storage_dir / path).read_bytes() for path in storage_files(storage_dir)}
    files = sum(1 + len(r["renditions"]) for r in records)

    status, dry, _ = migrate_store(both_stores, tmp_path, "--to", "s3", "--dry-run")
    assert status == 0
    assert (dry["dry_run"], dry["files"], dry["copied"]) == (True, files, 0)

    status, report, errors = migrate_store(both_stores, tmp_path, "--to", "s3")
    assert status == 0, errors
    assert (report["files"], report["copied"], report["failed"]) == (files, files, 0)
    assert report["bytes_copied"] == sum(len(data) for data in before.values())
    served = await served_from_s3(make_client, s3_environ, records)
    assert {url.removeprefix("/generated-images/"): data for url, data in served.items()} == before
    assert {p: (storage_dir / p).read_bytes() for p in storage_files(storage_dir)} == before

    status, again, _ = migrate_store(both_stores, tmp_path, "--to", "s3")
    assert status == 0
    assert (again["copied"], again["already_copied"]) == (0, files)


async def test_a_thousand_images_move_through_a_kill_and_a_resume_and_are_served_from_s3(
    both_stores, s3_environ, database: Database, storage_dir, tmp_path, make_client
):
    seed_images(database.url, storage_dir, 1000, game_code="MOVE", expired=False)
    kill_part_way(migrate_store(both_stores, tmp_path, "--to", "s3", wait=False), database)
    copied_before = database.count("store_copies")
    assert 0 < copied_before < 1000, "the kill should land part-way through the run"

    status, report, errors = migrate_store(both_stores, tmp_path, "--to", "s3")
    assert status == 0, errors
    assert report["already_copied"] == copied_before
    assert report["copied"] == 1000 - copied_before
    assert database.count("store_copies") == 1000
    client = await make_client(**s3_environ)
    for row in database.rows("SELECT image_path FROM generated_images"):
        response = await client.get(f"/generated-images/{row['image_path']}")
        assert response.status == 200
        assert await response.read() == (storage_dir / row["image_path"]).read_bytes()


async def test_and_back_to_the_filesystem(
    s3_environ, sidecar_environ, upload, tmp_path, make_client
):
    s3_client = await make_client(**s3_environ)

    record = await (await uploader(s3_client)(image=png_bytes(seed=3, size=40))).json()
    target = tmp_path / "moved"
    environ = {**sidecar_environ, **s3_environ, "IMAGE_STORAGE_BASE_DIR": str(target)}
    status, report, errors = migrate_store(environ, tmp_path, "--to", "filesystem")
    assert status == 0, errors
    assert report["copied"] == 1 + len(record["renditions"])
    assert (target / record["image_path"]).read_bytes() == png_bytes(seed=3, size=40)


def test_migrating_to_the_configured_store_is_refused(sidecar_environ, tmp_path):
    status, _, errors = migrate_store(sidecar_environ, tmp_path, "--to", "filesystem")
    assert status != 0
    assert "already" in errors
