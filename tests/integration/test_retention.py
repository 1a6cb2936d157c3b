"""Expiry, cleanup runs, purges, orphan sweeps, the cleanup lock and crash recovery."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

from image_sidecar.config import RetentionSettings
from image_sidecar.lifecycle.cleanup import run_cleanup
from image_sidecar.metrics import SidecarMetrics
from image_sidecar.prompt_cache.prompts import prompt_hash
from testkit.helpers import image_fields, kill_once_images_go, path_of, storage_files, stored_bytes
from testkit.images import png_bytes
from testkit.seeding import seed_images

KEY = prompt_hash("A cat riding a skateboard", "watercolor")
NO_GRACE = RetentionSettings(batch_size=50, orphan_grace_seconds=1)


async def test_expired_image_rows_and_files_are_deleted(upload, database, storage_dir, pool, store):
    record = await (await upload()).json()
    database.expire_images("game_code = %s", "ABCD")
    report = await run_cleanup(pool, store, NO_GRACE)
    assert report.outcome == "success"
    assert (report.images_deleted, report.files_deleted) == (1, 1 + len(record["renditions"]))
    assert report.bytes_freed == stored_bytes(record)
    assert report.cache_entries_removed == 1
    assert database.count("generated_images") == 0
    assert database.count("image_cache") == 0
    assert storage_files(storage_dir) == []


async def test_a_live_image_survives_the_cleanup(upload, database, storage_dir, pool, store):
    live = await (await upload(game_code="LIVE")).json()
    await upload(game_code="GONE", image=png_bytes(seed=2))
    database.expire_images("game_code = %s", "GONE")
    report = await run_cleanup(pool, store, NO_GRACE)
    assert report.images_deleted == 1
    assert [r["game_code"] for r in database.rows("SELECT game_code FROM generated_images")] == [
        "LIVE"
    ]
    assert path_of(storage_dir, live).read_bytes() == png_bytes()


async def test_reuse_survives_the_originals_expiry_sharing_one_inode(
    client, upload, database, storage_dir, pool, store
):
    original = await (await upload(game_code="ORIG")).json()
    reused = await (
        await client.post(f"/api/cache/{KEY}/hits", json=image_fields(game_code="REUSE"))
    ).json()
    assert (
        os.stat(path_of(storage_dir, original)).st_ino
        == os.stat(path_of(storage_dir, reused)).st_ino
    )
    database.expire_images("game_code = %s", "ORIG")
    report = await run_cleanup(pool, store, NO_GRACE)
    assert (report.images_deleted, report.cache_entries_moved) == (1, 1)
    assert report.bytes_freed == 0  # the bytes live on under the reuse's name
    served = await client.get(reused["image_url"])
    assert await served.read() == png_bytes()
    entry = await (await client.get(f"/api/cache/{KEY}")).json()
    assert entry["image"]["image_id"] == reused["image_id"]
    assert os.stat(path_of(storage_dir, reused)).st_nlink == 1
    third = await client.post(f"/api/cache/{KEY}/hits", json=image_fields(game_code="THIRD"))
    assert third.status == 201
    assert await (await client.get((await third.json())["image_url"])).read() == png_bytes()


async def test_cache_entry_goes_when_no_live_copy_is_left(upload, database, pool, store, client):
    await upload()
    database.expire_images("game_code = %s", "ABCD")
    report = await run_cleanup(pool, store, NO_GRACE)
    assert (report.cache_entries_moved, report.cache_entries_removed) == (0, 1)
    assert (await client.get(f"/api/cache/{KEY}")).status == 404
    assert (await client.post("/api/cache/lookup", json={"prompt": "x"})).status == 200


async def test_purging_a_game_keeps_the_game_that_reused_its_image(
    client, upload, database, storage_dir
):
    original = await (await upload(game_code="ORIG")).json()
    reused = await (
        await client.post(f"/api/cache/{KEY}/hits", json=image_fields(game_code="REUSE"))
    ).json()
    response = await client.delete("/api/games/ORIG")
    assert response.status == 200
    assert await response.json() == {
        "images_deleted": 1,
        "files_deleted": 1 + len(original["renditions"]),
        "bytes_freed": 0,
        "cache_entries_moved": 1,
        "cache_entries_removed": 0,
        "files_failed": 0,
        "failed_keys": [],
        "game_ids": [original["game_id"]],
    }
    assert not path_of(storage_dir, original).exists()
    assert (await (await client.get("/api/games/ORIG/images")).json()) == {"images": []}
    assert await (await client.get(reused["image_url"])).read() == png_bytes()
    listed = await (await client.get("/api/games/REUSE/images")).json()
    assert [r["image_id"] for r in listed["images"]] == [reused["image_id"]]


async def test_purging_a_player_deletes_only_that_players_images(
    client, upload, database, storage_dir
):
    leaving = await (await upload(image=png_bytes(seed=1))).json()
    staying = await (await upload(image=png_bytes(seed=2))).json()
    response = await client.delete(f"/api/games/ABCD/players/{leaving['player_id']}/images")
    assert response.status == 200
    assert (await response.json())["images_deleted"] == 1
    assert not path_of(storage_dir, leaving).exists()
    assert path_of(storage_dir, staying).read_bytes() == png_bytes(seed=2)
    assert database.count("generated_images") == 1


async def test_purge_needs_the_token_and_valid_identifiers(make_client, database, upload):
    await upload()
    client = await make_client(IMAGE_SIDECAR_API_TOKEN="t")
    assert (await client.delete("/api/games/ABCD")).status == 401
    assert (await client.post("/api/admin/cleanup")).status == 401
    auth = {"Authorization": "Bearer t"}
    bad = await client.delete("/api/games/AB..CD", headers=auth)
    assert bad.status == 400
    bad_player = await client.delete("/api/games/ABCD/players/not-a-uuid/images", headers=auth)
    assert bad_player.status == 400
    assert (await bad_player.json())["error"]["field"] == "player_id"
    assert database.count("generated_images") == 1


async def test_admin_endpoint_runs_the_cleanup_and_returns_the_summary(client, upload, database):
    await upload()
    database.expire_images("game_code = %s", "ABCD")
    response = await client.post("/api/admin/cleanup")
    assert response.status == 200
    summary = await response.json()
    assert summary["outcome"] == "success"
    assert summary["images_deleted"] == 1
    assert set(summary) >= {
        "files_deleted",
        "bytes_freed",
        "cache_entries_moved",
        "cache_entries_removed",
        "orphans_swept",
        "seconds",
    }


async def test_orphan_files_under_unsettled_writes_are_swept_after_the_grace_period(
    upload, database, storage_dir, pool, store
):
    live = await (await upload()).json()
    orphan = storage_dir / "game-CRASH" / "round-1" / "player-x.png"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a crash")
    (orphan.parent / "player-x.thumb.webp").write_bytes(b"its rendition")
    partial = store.staging_dir / ".tmp-abc.part"
    partial.write_bytes(b"half")
    fresh = storage_dir / "game-NEW" / "round-1" / "player-y.png"
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"upload in flight")
    unjournaled = storage_dir / "game-HAND" / "round-1" / "player-z.png"
    unjournaled.parent.mkdir(parents=True)
    unjournaled.write_bytes(b"nobody's write: the audit's")
    database.rows(
        "INSERT INTO write_intents (key_prefix, written_at) VALUES "
        "('game-CRASH/round-1/player-x.', now() - interval '2 hours'), "
        "('game-NEW/round-1/player-y.', now() - interval '2 hours') RETURNING 1"
    )
    await asyncio.sleep(1.1)
    fresh.write_bytes(b"upload in flight, rewritten")
    report = await run_cleanup(pool, store, RetentionSettings(orphan_grace_seconds=1))
    assert report.orphans_swept == 3
    assert not orphan.exists()
    assert not partial.exists()
    assert fresh.exists()
    assert unjournaled.exists()
    assert path_of(storage_dir, live).exists()
    # The settled place is forgotten; the one whose file was spared is looked at again.
    assert [row["key_prefix"] for row in database.rows("SELECT key_prefix FROM write_intents")] == [
        "game-NEW/round-1/player-y."
    ]


async def test_dry_run_counts_and_deletes_nothing(upload, database, storage_dir, pool, store):
    record = await (await upload()).json()
    database.expire_images("game_code = %s", "ABCD")
    before = storage_files(storage_dir)
    report = await run_cleanup(pool, store, NO_GRACE, dry_run=True)
    assert report.outcome == "dry_run"
    assert (report.images_deleted, report.bytes_freed) == (1, stored_bytes(record))
    assert database.count("generated_images") == 1
    assert storage_files(storage_dir) == before


async def test_a_second_run_skips_while_another_holds_the_lease(
    upload, database, storage_dir, pool, store
):
    await upload()
    database.expire_images("game_code = %s", "ABCD")
    other_replica = str(uuid.uuid4())
    database.rows(
        "INSERT INTO cleanup_lease (holder, expires_at) VALUES (%s, now() + interval '1 minute')",
        other_replica,
    )
    report = await run_cleanup(pool, store, NO_GRACE)
    assert report.outcome == "skipped"
    assert "lease" in report.reason
    assert report.images_deleted == 0
    assert database.count("generated_images") == 1
    # A holder that died: its lease lapses and the next run goes ahead, then lets go.
    database.rows("UPDATE cleanup_lease SET expires_at = now() - interval '1 second'")
    report = await run_cleanup(pool, store, NO_GRACE)
    assert (report.outcome, report.images_deleted) == ("success", 1)
    assert database.count("cleanup_lease") == 0


async def test_concurrent_runs_never_both_delete(database, storage_dir, pool, store):
    seed_images(database.url, storage_dir, 300)
    reports = await asyncio.gather(*(run_cleanup(pool, store, NO_GRACE) for _ in range(3)))
    assert sum(r.images_deleted for r in reports) == 300
    assert sum(r.files_deleted for r in reports) == 300  # seeded without renditions
    assert sum(r.outcome == "success" for r in reports) >= 1
    assert {r.outcome for r in reports} <= {"success", "skipped"}
    assert storage_files(storage_dir) == []


def _cleanup_command(database, storage_dir, *args, batch_size="20"):
    environ = {
        **os.environ,
        "DATABASE_URL": database.url,
        "IMAGE_STORAGE_BASE_DIR": str(storage_dir),
        "IMAGE_CLEANUP_BATCH_SIZE": batch_size,
        "IMAGE_ORPHAN_GRACE_SECONDS": "1",
    }
    return [sys.executable, "-m", "image_sidecar", "cleanup", *args], environ


def test_a_run_killed_part_way_is_finished_by_the_next_run(database, storage_dir):
    seed_images(database.url, storage_dir, 3000)
    command, environ = _cleanup_command(database, storage_dir)
    process = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    left = kill_once_images_go(process, database, 3000)
    assert 0 < left < 3000, "the kill should land part-way through the run"
    # Every listed row still has its file; only expired rows may have lost theirs.
    for row in database.rows("SELECT image_path FROM generated_images WHERE expires_at > now()"):
        assert (storage_dir / row["image_path"]).exists()
    time.sleep(1.1)  # past the orphan grace period
    # The killed run's lease stays until it lapses (LEASE_SECONDS): let it lapse now.
    assert database.count("cleanup_lease") == 1
    database.rows("UPDATE cleanup_lease SET expires_at = now()")
    finished = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["outcome"] == "success"
    assert summary["images_deleted"] == left
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


def test_cleanup_command_prints_the_summary_and_supports_dry_run(database, storage_dir):
    seed_images(database.url, storage_dir, 5)
    command, environ = _cleanup_command(database, storage_dir, "--dry-run")
    dry = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    summary = json.loads(dry.stdout)
    assert (summary["outcome"], summary["images_deleted"]) == ("dry_run", 5)
    assert database.count("generated_images") == 5
    command, environ = _cleanup_command(database, storage_dir)
    real = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert json.loads(real.stdout)["images_deleted"] == 5
    assert '"event": "cleanup_run"' in real.stderr  # the one structured line per run


def test_cleanup_command_exits_non_zero_when_the_database_is_unreachable(database, storage_dir):
    command, environ = _cleanup_command(database, storage_dir)
    environ["DATABASE_URL"] = database.url.replace(database.name, "no_such_database")
    result = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "cannot connect to the database" in result.stderr


def make_undeletable(path) -> None:
    """A directory where the file was: unlink fails, even for root."""
    path.unlink()
    (path / "child").mkdir(parents=True)


async def test_a_file_that_cannot_be_deleted_is_reported_and_never_stalls_the_cleanup(
    upload, database, storage_dir, pool, store
):
    stuck = await (await upload(game_code="STUCK")).json()
    # It expires first, so every run meets it first.
    database.expire_images("game_code = %s", "STUCK", ago="1 hour")
    make_undeletable(path_of(storage_dir, stuck))
    tight = RetentionSettings(batch_size=1, orphan_grace_seconds=3600)
    metrics = SidecarMetrics()

    for run, game_code in enumerate(["FIRST", "SECOND"], start=1):
        await upload(game_code=game_code, image=png_bytes(seed=run))
        database.expire_images("game_code = %s", game_code)
        report = await run_cleanup(pool, store, tight)
        metrics.cleanup_finished(report)
        assert report.outcome == "success"
        assert (report.images_deleted, report.files_failed) == (1, 1)
        assert report.failed_keys == [stuck["image_path"]]
        assert [
            row["game_code"] for row in database.rows("SELECT game_code FROM generated_images")
        ] == ["STUCK"]
    assert metrics.cleanup_files_failed._value.get() == 2

    shutil.rmtree(path_of(storage_dir, stuck))  # an operator fixes it; the next run finishes
    report = await run_cleanup(pool, store, tight)
    assert (report.images_deleted, report.files_failed) == (1, 0)
    assert database.count("generated_images") == 0


async def test_uploads_and_reads_are_served_while_a_cleanup_runs(
    make_client, database, storage_dir
):
    from testkit.helpers import uploader

    client = await make_client(IMAGE_CLEANUP_BATCH_SIZE="50")
    upload = uploader(client)
    seed_images(database.url, storage_dir, 2000)
    live = await (await upload()).json()
    cleanup = asyncio.ensure_future(client.post("/api/admin/cleanup"))
    served = 0
    while not cleanup.done():
        read = await client.get(live["image_url"])
        assert read.status == 200
        stored = await upload(image=png_bytes(seed=served + 100))
        assert stored.status == 201
        served += 1
    assert (await cleanup).status == 200
    # The event loop kept answering between the batches instead of waiting for the run.
    assert served >= 2
    assert database.count("generated_images") == 1 + served
