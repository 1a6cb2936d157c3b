"""Databases for tests and benchmarks: a synchronous peek for assertions, a fresh benchmark
database."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2.extras import RealDictCursor

from image_sidecar import db
from image_sidecar.db.embedded import (
    database_url,
    drop_database,
    ensure_database,
    start_embedded_postgres,
)


class Database:
    """Synchronous peek into the test database, for assertions about what was written."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = psycopg2.extensions.parse_dsn(url)["dbname"]

    def rows(self, query: str, *params: Any) -> list[dict[str, Any]]:
        conn = psycopg2.connect(self.url)
        try:
            conn.autocommit = True
            with conn.cursor(cursor_factory=RealDictCursor) as cur:
                cur.execute(query, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def count(self, table: str) -> int:
        return self.rows(f"SELECT count(*) AS n FROM {table}")[0]["n"]

    def expire_images(self, where: str = "", *params: Any, ago: str = "1 second") -> None:
        """Make images expired `ago` (all of them, or those `where` selects): the next cleanup
        deletes them, and no listing or lookup shows them any more."""
        condition = f" WHERE {where}" if where else ""
        self.rows(
            f"UPDATE generated_images SET expires_at = now() - interval '{ago}'{condition}",
            *params,
        )


@contextmanager
def bench_database(work: Path) -> Iterator[str]:
    """A fresh migrated database on BENCH_DATABASE_URL's server or an embedded one."""
    server = None
    admin_url = os.environ.get("BENCH_DATABASE_URL")
    if admin_url is None:
        server = start_embedded_postgres(work / "pg", delete_on_stop=True)
        admin_url = server.get_uri()
    name = f"sidecar_bench_{uuid.uuid4().hex[:8]}"
    ensure_database(admin_url, name)
    try:
        url = database_url(admin_url, name)
        asyncio.run(db.migrate_database(url))
        yield url
    finally:
        drop_database(admin_url, name)
        if server is not None:
            server.cleanup()


def postmaster_pid(url: str) -> int:
    """The pid of the PostgreSQL server `url` names (on this machine): the parent of a backend."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
        # Read while connected: the backend exits with its connection.
        stat = Path(f"/proc/{backend}/stat").read_text()
    finally:
        conn.close()
    return int(stat.rsplit(")", 1)[1].split()[1])


def pg_tool(name: str, url: str) -> str:
    """The path of PostgreSQL's `name` (pg_dump, pg_restore) that can talk to the server at
    `url`: of the server's major version or newer (pgserver's own, or Debian's)."""
    with psycopg2.connect(url) as connection, connection.cursor() as cur:
        cur.execute("SHOW server_version_num")
        major = int(cur.fetchone()[0]) // 10000
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    try:
        import pgserver

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin" / name)
    except ImportError:
        pass
    for candidate in candidates:
        version = subprocess.run([str(candidate), "--version"], capture_output=True, text=True)
        found = re.search(r"(\d+)\.\d+", version.stdout)
        if found and int(found.group(1)) >= major:
            return str(candidate)
    raise FileNotFoundError(f"no {name} for PostgreSQL {major}")
