"""What keeps a month's store in order at the cost of the day's work: storage figures kept as
the data changes (exact against a full recount), the nightly sweep that looks only where a write
did not settle (a kill at each step of an upload), the audit that walks the store for the rest,
statement bounds that stop the work in PostgreSQL, and a scrub that verifies S3 objects by their
checksum instead of downloading them."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from pathlib import Path

import aiohttp
import psycopg2
import pytest

from image_sidecar import db
from image_sidecar.config import S3Settings
from image_sidecar.db import stats as stats_rows
from image_sidecar.errors import DatabaseUnavailable
from image_sidecar.images.pool import ImageProcessor
from image_sidecar.lifecycle.scrub import run_scrub
from image_sidecar.storage.s3 import S3BlobStore
from testkit.helpers import (
    image_fields,
    run_sidecar,
    sidecar_process,
    storage_files,
    uploader,
)
from testkit.images import noise_png, png_bytes

RECOUNT = """
SELECT (SELECT count(*) FROM generated_images WHERE expires_at > now()) AS live_images,
       (SELECT count(*) FROM generated_images) AS stored_images,
       (SELECT count(*) FROM generated_images)
           + (SELECT count(size_bytes) FROM image_renditions) AS stored_files,
       (SELECT coalesce(sum(size_bytes), 0) FROM generated_images)
           + (SELECT coalesce(sum(size_bytes), 0) FROM image_renditions) AS stored_bytes
"""


async def _figures(pool: db.Pool) -> dict[str, int]:
    async with db.cursor(pool) as cur:
        totals = await stats_rows.storage_totals(cur)
    return {name: getattr(totals, name) for name in _recount_names()}


def _recount_names() -> tuple[str, ...]:
    return ("live_images", "stored_images", "stored_files", "stored_bytes")


async def _assert_exact(pool: db.Pool, database, step: str) -> None:
    expected = {k: int(v) for k, v in database.rows(RECOUNT)[0].items()}
    assert await _figures(pool) == expected, f"after {step}"


async def test_the_storage_figures_stay_exact_through_every_kind_of_change(
    make_client, pool, database, sidecar_environ, tmp_path, storage_dir
):
    client = await make_client()
    upload = uploader(client)
    await _assert_exact(pool, database, "nothing")
    records = []
    for seed, code in enumerate(("ONE", "TWO", "THREE")):
        answer = await upload(image=noise_png(120, seed=seed), game_code=code)
        records.append(await answer.json())
    await _assert_exact(pool, database, "uploads")
    same_bytes = await upload(image=noise_png(120, seed=0), game_code="SAME", prompt="other")
    assert same_bytes.status == 201
    await _assert_exact(pool, database, "the same bytes uploaded again as another picture")

    hit = await client.post(
        f"/api/cache/{records[0]['prompt_hash']}/hits", json=image_fields(game_code="REUSE")
    )
    assert hit.status == 201, await hit.text()
    await _assert_exact(pool, database, "a reuse")

    taken = await client.delete(f"/api/images/by-sha256/{records[1]['sha256']}")
    assert taken.status == 200
    await _assert_exact(pool, database, "a takedown")

    purged = await client.delete("/api/games/THREE")
    assert purged.status == 200, await purged.text()
    await _assert_exact(pool, database, "a purge")

    database.expire_images("game_code = %s", "SAME")
    await _assert_exact(pool, database, "an expiry (before the cleanup)")
    assert (await client.post("/api/admin/cleanup")).status == 200
    await _assert_exact(pool, database, "the cleanup")

    exported = run_sidecar(
        "export", "--game-id", records[0]["game_id"], "--out", "one.zip",
        cwd=tmp_path, environ=sidecar_environ,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert (await client.delete("/api/games/ONE")).status == 200
    assert (await client.post("/api/admin/cleanup")).status == 200
    imported = run_sidecar("import", "one.zip", cwd=tmp_path, environ=sidecar_environ)
    assert imported.returncode == 0, imported.stderr
    await _assert_exact(pool, database, "an import")

    alone = await (await upload(image=noise_png(120, seed=7), game_code="FOUR")).json()
    await _assert_exact(pool, database, "an upload after the import")
    (storage_dir / alone["image_path"]).write_bytes(b"not the picture")  # no copy to restore
    scrubbed = run_sidecar("scrub", cwd=tmp_path, environ=sidecar_environ)
    assert json.loads(scrubbed.stdout)["unrecoverable"], scrubbed.stdout
    await _assert_exact(pool, database, "a damaged original taken out of service")

    # The recount command rebuilds the same figures from the rows.
    recounted = run_sidecar("recount", cwd=tmp_path, environ=sidecar_environ)
    assert recounted.returncode == 0, recounted.stderr
    figures = json.loads(recounted.stdout)
    assert figures["before"] == figures["after"]
    await _assert_exact(pool, database, "a recount")


async def test_stats_and_metrics_read_the_kept_figures(make_client, database):
    client = await make_client(IMAGE_METRICS_REFRESH_SECONDS="0.1")
    record = await (await uploader(client)(image=png_bytes(seed=5))).json()
    stats = await (await client.get("/api/stats")).json()
    on_disk = record["size_bytes"] + sum(r["size_bytes"] or 0 for r in record["renditions"])
    assert (stats["live_images"], stats["storage_used_bytes"]) == (1, on_disk)
    assert stats["average_image_bytes"] == record["size_bytes"]
    assert database.count("usage_deltas") == 0  # the read folded what the upload appended


def _environ(sidecar_environ: dict[str, str]) -> dict[str, str]:
    return {**sidecar_environ, "IMAGE_SIDECAR_WORKERS": "1", "IMAGE_ORPHAN_GRACE_SECONDS": "1"}


def _post_in_background(base_url: str) -> threading.Thread:
    async def post() -> None:
        form = aiohttp.FormData()
        for name, value in image_fields(game_code="CRASH").items():
            form.add_field(name, value)
        form.add_field("image", noise_png(160, seed=9), filename="image.png")
        async with aiohttp.ClientSession() as session:
            try:
                async with session.post(f"{base_url}/api/images", data=form) as response:
                    await response.read()
            except aiohttp.ClientError:
                pass  # the sidecar is killed under it

    thread = threading.Thread(target=lambda: asyncio.run(post()), daemon=True)
    thread.start()
    return thread


def _wait_until_blocked_on(database, table: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = database.rows(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            f"%{table}%",
        )
        if waiting:
            return
        time.sleep(0.02)
    pytest.fail(f"the upload never reached its write to {table}")


@pytest.mark.parametrize(
    ("step", "blocking_table"),
    [
        ("staged, before the journal", "write_intents"),
        ("published under its keys, before the commit", "daily_usage"),
    ],
)
def test_an_upload_killed_at_each_step_leaves_what_the_next_cleanup_removes_without_the_audit(
    step, blocking_table, database, sidecar_environ, storage_dir, tmp_path
):
    environ = _environ(sidecar_environ)
    holder = psycopg2.connect(database.url)
    try:
        with holder.cursor() as cur:  # the upload waits at its write to this table
            cur.execute(f"LOCK TABLE {blocking_table} IN EXCLUSIVE MODE")
        with sidecar_process("serve", environ, tmp_path) as (process, base_url):
            poster = _post_in_background(base_url)
            _wait_until_blocked_on(database, blocking_table)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
    finally:
        holder.rollback()
        holder.close()
    poster.join(timeout=30)
    left = storage_files(storage_dir)
    assert database.count("generated_images") == 0
    assert left, f"killed {step}: the test should leave files behind"
    if blocking_table == "daily_usage":
        assert any(name.startswith("game-CRASH") for name in left), left
        assert database.count("write_intents") == 1
    else:
        assert all(name.startswith(".staging/") for name in left), left

    time.sleep(1.1)  # past the orphan grace period
    cleaned = run_sidecar("cleanup", cwd=tmp_path, environ=environ)
    assert cleaned.returncode == 0, cleaned.stderr
    assert json.loads(cleaned.stdout)["orphans_swept"] == len(left)
    assert storage_files(storage_dir) == []
    assert database.count("write_intents") == 0


def test_a_file_nobody_wrote_through_the_sidecar_is_found_by_the_audit_not_the_cleanup(
    database, sidecar_environ, storage_dir, tmp_path
):
    environ = _environ(sidecar_environ)
    stray = storage_dir / "game-HAND-copied" / "round-1" / "player-x.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"an operator's copy")
    legacy_temp = storage_dir / "game-OLD" / "round-2" / ".tmp-crashed_1.part"
    legacy_temp.parent.mkdir(parents=True)
    legacy_temp.write_bytes(b"half a write of an older version")
    time.sleep(1.1)

    cleaned = run_sidecar("cleanup", cwd=tmp_path, environ=environ)
    assert json.loads(cleaned.stdout)["orphans_swept"] == 0
    assert stray.exists()
    assert legacy_temp.exists()

    dry = run_sidecar("audit", "--dry-run", cwd=tmp_path, environ=environ)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["outcome"] == "dry_run"
    assert report["orphans_found"] == 2
    assert sorted(report["orphan_keys"]) == [
        "game-HAND-copied/round-1/player-x.png",
        "game-OLD/round-2/.tmp-crashed_1.part",
    ]
    assert stray.exists()

    audited = run_sidecar("audit", cwd=tmp_path, environ=environ)
    assert audited.returncode == 0, audited.stderr
    report = json.loads(audited.stdout)
    assert (report["outcome"], report["orphans_deleted"]) == ("success", 2)
    assert storage_files(storage_dir) == []
    state = database.rows("SELECT resume_after, last_success_at FROM audit_state")[0]
    assert state["resume_after"] is None
    assert state["last_success_at"] is not None


def test_an_audit_cut_short_goes_on_where_it_stopped(database, sidecar_environ, tmp_path):
    environ = {**_environ(sidecar_environ), "IMAGE_AUDIT_FILES_PER_SECOND": "0"}
    storage_dir = Path(environ["IMAGE_STORAGE_BASE_DIR"])
    for code in ("A", "B", "C"):
        stray = storage_dir / f"game-{code}-x" / "round-1" / "player-1.png"
        stray.parent.mkdir(parents=True)
        stray.write_bytes(b"stray")
    time.sleep(1.1)
    first = json.loads(
        run_sidecar("audit", "--max-seconds", "0", cwd=tmp_path, environ=environ).stdout
    )
    assert (first["outcome"], first["orphans_deleted"]) == ("partial", 1)
    second = json.loads(run_sidecar("audit", cwd=tmp_path, environ=environ).stdout)
    assert (second["resumed_after"], second["orphans_deleted"]) == ("game-A-x", 2)


async def test_a_statement_past_its_bound_is_cancelled_in_postgresql(database):
    pool = await db.create_pool(database.url, size=1, timeout=0.5)
    try:
        with pytest.raises(DatabaseUnavailable):
            async with db.cursor(pool) as cur:
                await cur.execute("SELECT pg_sleep(30) AS outlived")
        deadline = time.monotonic() + 5  # the server's bound is a second past the client's
        while time.monotonic() < deadline:
            running = database.rows(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                "%pg_sleep(30) AS outlived%",
            )
            if not running:
                break
            await asyncio.sleep(0.1)
        assert running == [], "the abandoned statement still runs in PostgreSQL"
    finally:
        await db.close_pool(pool)


async def test_an_s3_scrub_verifies_intact_objects_by_checksum_and_reads_only_the_damaged(
    make_client, s3_environ, pool, database
):
    client = await make_client(**s3_environ)
    upload = uploader(client)
    records = [
        await (await upload(image=noise_png(150, seed=seed), game_code=f"S3{seed}")).json()
        for seed in range(3)
    ]
    settings = S3Settings(
        bucket=s3_environ["IMAGE_S3_BUCKET"],
        endpoint_url=s3_environ["IMAGE_S3_ENDPOINT_URL"],
        access_key_id="test",
        secret_access_key="test",
    )
    processor = ImageProcessor(max_pixels=40_000_000, workers=1, formats=("webp",))
    try:
        async with S3BlobStore.connect(settings) as store:
            # An object overwritten behind the sidecar's back: its bytes and checksum differ.
            damaged = records[1]["image_path"]
            await store._client.put_object(
                Bucket=settings.bucket, Key=damaged, Body=b"damaged bytes"
            )
            downloads: list[str] = []
            store._client.meta.events.register(
                "before-call.s3.GetObject",
                lambda params, **_: downloads.append(params["url_path"]),
            )
            report = await run_scrub(pool, store, processor, max_bytes_per_second=0)
    finally:
        processor.close()
    assert report.damaged == 1
    assert [item["key"] for item in report.unrecoverable] == [damaged]
    files = sum(1 + sum(r["size_bytes"] is not None for r in rec["renditions"]) for rec in records)
    # Every intact file by its checksum (the damaged image's renditions wait for it); the
    # damaged original alone was downloaded.
    assert report.files_verified_by_checksum == files - len(records[1]["renditions"]) - 1
    assert len(downloads) == 1, downloads
    assert downloads[0].endswith(damaged)


async def test_the_cleanup_forgets_the_games_it_empties_and_purged_young_ones_a_day_later(
    make_client, database
):
    client = await make_client()
    upload = uploader(client)
    old = await (await upload(image=noise_png(60, seed=1), game_code="OLDGAME")).json()
    young = await (await upload(image=noise_png(60, seed=2), game_code="YOUNG")).json()
    database.rows(
        "UPDATE games SET created_at = now() - interval '3 days' WHERE game_id = %s RETURNING 1",
        old["game_id"],
    )
    database.expire_images("game_code = %s", "OLDGAME")
    assert (await client.delete("/api/games/YOUNG")).status == 200  # a purge of a game in play
    assert (await client.post("/api/admin/cleanup")).status == 200
    games = {row["game_id"] for row in database.rows("SELECT game_id::text FROM games")}
    assert games == {young["game_id"]}  # the purged young game keeps its row for a day
    database.rows("UPDATE emptied_games SET emptied_at = now() - interval '25 hours' RETURNING 1")
    assert (await client.post("/api/admin/cleanup")).status == 200
    assert database.count("games") == 0
    assert database.count("game_rounds") == 0
    assert database.count("emptied_games") == 0
