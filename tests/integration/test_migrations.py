"""Migrations: idempotent, safe for concurrent replicas; `serve` refuses an old schema."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from aiohttp import web

from image_sidecar import db
from image_sidecar.app import create_app
from image_sidecar.config import load_config
from image_sidecar.db.embedded import database_url, drop_database, ensure_database
from image_sidecar.db.migrations_runner import (
    apply_migrations,
    available_migrations,
    pending_migrations,
)
from testkit.helpers import run_sidecar


@pytest.fixture
def empty_database_url(postgres_admin_url):
    name = f"sidecar_empty_{uuid.uuid4().hex[:10]}"
    ensure_database(postgres_admin_url, name)
    yield database_url(postgres_admin_url, name)
    drop_database(postgres_admin_url, name)


async def test_concurrent_migrate_runs_apply_each_migration_once(empty_database_url):
    pools = [await db.create_pool(empty_database_url, size=1) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(pool) for pool in pools))
        names = [m.name for m in available_migrations()]
        applied = [name for run in results for name in run]
        assert sorted(applied) == names  # each once, whichever run applied it
        for run in results:
            assert run == sorted(run)  # in order
        assert await pending_migrations(pools[0]) == []
        assert await apply_migrations(pools[0]) == []
    finally:
        for pool in pools:
            await db.close_pool(pool)


async def test_serve_refuses_to_start_on_an_unmigrated_database(empty_database_url, tmp_path):
    config = load_config(
        {"DATABASE_URL": empty_database_url, "IMAGE_STORAGE_BASE_DIR": str(tmp_path)}
    )
    runner = web.AppRunner(create_app(config))
    with pytest.raises(db.SchemaBehind, match="image-sidecar migrate"):
        await runner.setup()
    await runner.cleanup()


def test_serve_command_says_to_migrate_first(empty_database_url, tmp_path):
    environ = {**os.environ, "DATABASE_URL": empty_database_url}
    result = run_sidecar("serve", cwd=tmp_path, environ=environ)
    assert result.returncode != 0
    assert "run `image-sidecar migrate` first" in result.stderr
    assert "Traceback" not in result.stderr
