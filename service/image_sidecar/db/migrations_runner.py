"""Numbered SQL migrations, applied in order and recorded, each in its own transaction under a
transaction-scoped advisory lock: two `migrate` runs serialize, also through PgBouncer in
transaction mode, where a session lock would stay on whichever server connection took it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import aiopg

# Any constant shared by every replica; two `migrate` runs serialize on it.
_MIGRATION_LOCK_ID = 0x1D5E_0001


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The repository's migrations/ folder, installed as the image_sidecar.migrations package."""
    files = resources.files("image_sidecar.migrations").iterdir()
    return [
        Migration(file.name.removesuffix(".sql"), file.read_text(encoding="utf-8"))
        for file in sorted(files, key=lambda f: f.name)
        if re.fullmatch(r"[0-9]{4}_\w+\.sql", file.name)
    ]


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def _applied(cur: aiopg.Cursor) -> set[str]:
    await cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    (exists,) = await cur.fetchone()
    if not exists:
        return set()
    await cur.execute("SELECT name FROM schema_migrations")
    return {name for (name,) in await cur.fetchall()}


async def pending_migrations(pool: aiopg.Pool) -> list[str]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        applied = await _applied(cur)
    return [m.name for m in available_migrations() if m.name not in applied]


async def apply_migrations(pool: aiopg.Pool) -> list[str]:
    """Apply what is pending, each file in its own transaction; returns the names applied.
    Each transaction takes the lock, then looks again whether its file is applied: a run that
    waited on another finds the work done."""
    done: list[str] = []
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
            await cur.execute(_CREATE_TABLE)
        for migration in available_migrations():
            async with cur.begin():
                # A migration rewrites or counts whole tables: no statement bound a sidecar left
                # on this server connection (through PgBouncer) may cut it short.
                await cur.execute(
                    "SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(%s)",
                    (_MIGRATION_LOCK_ID,),
                )
                if migration.name in await _applied(cur):
                    continue
                await cur.execute(migration.sql)
                await cur.execute(
                    "INSERT INTO schema_migrations (name) VALUES (%s)", (migration.name,)
                )
            done.append(migration.name)
    return done
