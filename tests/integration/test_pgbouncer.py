"""Several replicas behind PgBouncer in transaction mode (Debian's real pgbouncer): migrations
racing, single-flight claims and long-poll wake-ups across two app instances, concurrent
cleanups. Transaction pooling hands each transaction whichever server connection is free, so
nothing may rely on a session: no session advisory lock, no LISTEN through it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from image_sidecar import db
from image_sidecar.appkeys import notification_hub_key
from image_sidecar.config import RetentionSettings
from image_sidecar.db.embedded import LocalPostgres, database_url, ensure_database
from image_sidecar.db.migrations_runner import apply_migrations, available_migrations
from image_sidecar.lifecycle.cleanup import run_cleanup
from testkit.cache import lookup, until_waiting
from testkit.helpers import free_port, require_tool, uploader
from testkit.seeding import seed_images


class Bouncer:
    def __init__(self, direct_admin: str, bouncer_port: int) -> None:
        self.direct_admin = direct_admin
        self.port = bouncer_port

    def through(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def direct(self, database: str) -> str:
        return database_url(self.direct_admin, database)


@pytest.fixture(scope="module")
def bouncer() -> Iterator[Bouncer]:
    """A PostgreSQL of the machine's binaries on 127.0.0.1 and pgbouncer in transaction mode in
    front of it (both as the postgres user: pgbouncer refuses to run as root)."""
    pgbouncer = require_tool("pgbouncer")
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        require_tool("postgresql-server-binaries")  # skips, or fails in CI, saying what is missing
    work = Path(tempfile.mkdtemp(prefix="sidecar-bouncer-"))
    work.chmod(0o755)
    server = LocalPostgres.start(work / "pg", delete_on_stop=True)
    port = free_port()
    config = work / "pgbouncer.ini"
    config.write_text(
        f"""
[databases]
* = host=127.0.0.1 port={server.port} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {work}/pgbouncer.log
pidfile = {work}/pgbouncer.pid
"""
    )
    command = [pgbouncer, str(config)]
    if os.geteuid() == 0:
        shutil.chown(work, "postgres", "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            psycopg2.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres").close()
            break
        except Exception:
            if process.poll() is not None:
                log = work / "pgbouncer.log"
                pytest.fail(f"pgbouncer exited: {log.read_text() if log.exists() else ''}")
            time.sleep(0.1)
    try:
        yield Bouncer(server.get_uri(), port)
    finally:
        process.terminate()
        process.wait(timeout=10)
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
async def bounced_database(bouncer: Bouncer) -> str:
    """A fresh database, migrated by three runs racing through pgbouncer."""
    name = f"bounced_{uuid.uuid4().hex[:10]}"
    ensure_database(bouncer.direct_admin, name)
    pools = [await db.create_pool(bouncer.through(name), size=1) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(pool) for pool in pools))
    finally:
        for pool in pools:
            await db.close_pool(pool)
    applied = [migration for run in results for migration in run]
    assert sorted(applied) == [m.name for m in available_migrations()]  # each exactly once
    return name


async def test_racing_migrations_through_pgbouncer_apply_each_file_once(bounced_database):
    assert bounced_database  # the fixture's assertions are the test


async def test_single_flight_and_wake_up_across_two_instances_through_pgbouncer(
    bouncer, bounced_database, make_client
):
    settings = {
        "DATABASE_URL": bouncer.through(bounced_database),
        "DATABASE_LISTEN_URL": bouncer.direct(bounced_database),
    }
    first, second = await make_client(**settings), await make_client(**settings)
    answers = await asyncio.gather(*(lookup(c) for c in [first, second] * 10))
    assert sorted(a["status"] for a in answers) == ["miss"] + ["pending"] * 19
    (claimed,) = [a for a in answers if a["status"] == "miss"]

    waiter = asyncio.ensure_future(lookup(second, wait_ms=20_000))
    await until_waiting(second)
    assert not waiter.done()
    uploaded = await uploader(first)(claim_token=claimed["claim_token"])
    assert uploaded.status == 201
    result = await asyncio.wait_for(waiter, 10)
    assert result["status"] == "hit"
    assert second.app[notification_hub_key].delivering  # woken by NOTIFY, not by polling


async def test_without_a_direct_listen_url_waits_poll_and_still_end(
    bouncer, bounced_database, make_client
):
    client = await make_client(DATABASE_URL=bouncer.through(bounced_database))
    hub = client.app[notification_hub_key]
    for _ in range(50):  # the delivery check takes up to a second after connecting
        if not hub.delivering:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.2)
    assert not hub.delivering  # the ping sent through pgbouncer never arrived
    claimed = await lookup(client)
    waiter = asyncio.ensure_future(lookup(client, wait_ms=20_000))
    await until_waiting(client)
    await uploader(client)(claim_token=claimed["claim_token"])
    assert (await asyncio.wait_for(waiter, 10))["status"] == "hit"


async def test_concurrent_cleanups_through_pgbouncer_delete_everything_once(
    bouncer, bounced_database, storage_dir, store
):
    url = bouncer.through(bounced_database)
    seed_images(bouncer.direct(bounced_database), storage_dir, 300)
    pools = [await db.create_pool(url, size=2) for _ in range(3)]
    try:
        settings = RetentionSettings(batch_size=50, orphan_grace_seconds=1)
        reports = await asyncio.gather(*(run_cleanup(pool, store, settings) for pool in pools))
    finally:
        for pool in pools:
            await db.close_pool(pool)
    assert sum(r.images_deleted for r in reports) == 300
    assert {r.outcome for r in reports} <= {"success", "skipped"}
    assert sum(r.outcome == "success" for r in reports) >= 1
