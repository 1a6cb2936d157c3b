"""`image-sidecar serve | migrate | dev`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import replace

import structlog
from aiohttp import web

from image_sidecar import db
from image_sidecar.app import create_app
from image_sidecar.config import Config, ConfigError, load_config, load_environment
from image_sidecar.db.migrations_runner import apply_migrations
from image_sidecar.embedded_db import ensure_database, start_embedded_postgres
from image_sidecar.log import configure_logging

log = structlog.get_logger("image_sidecar.cli")

DEV_DATABASE = "image_sidecar"


def _require_database(config: Config, command: str) -> str:
    if config.database_url is None:
        raise SystemExit(
            f"image-sidecar {command}: DATABASE_URL is not set "
            "(use `image-sidecar dev` for an embedded PostgreSQL)"
        )
    return config.database_url


async def _migrate(database_url: str) -> list[str]:
    pool = await db.create_pool(database_url, size=1, timeout=60)
    try:
        return await apply_migrations(pool)
    finally:
        pool.close()
        await pool.wait_closed()


def migrate(config: Config) -> None:
    applied = asyncio.run(_migrate(_require_database(config, "migrate")))
    log.info("migrations_applied", applied=applied, count=len(applied))


def serve(config: Config) -> None:
    _require_database(config, "serve")
    log.info(
        "serving", url=f"http://{config.host}:{config.port}", storage=str(config.storage_base_dir)
    )
    web.run_app(create_app(config), host=config.host, port=config.port, print=None, access_log=None)


def dev(config: Config) -> None:
    """Serve with an embedded PostgreSQL under IMAGE_SIDECAR_DEV_DATA_DIR unless DATABASE_URL."""
    server = None
    if config.database_url is None:
        server = start_embedded_postgres(config.dev_data_dir / "postgres")
        ensure_database(server.get_uri(), DEV_DATABASE)
        config = replace(config, database_url=server.get_uri(DEV_DATABASE))
        log.info("embedded_postgres_started", data_dir=str(config.dev_data_dir / "postgres"))
    try:
        migrate(config)
        serve(config)
    finally:
        if server is not None:
            server.cleanup()
            log.info("embedded_postgres_stopped")


COMMANDS = {"serve": serve, "migrate": migrate, "dev": dev}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="image-sidecar", description="Image sidecar of the Picture This game server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the HTTP API (needs DATABASE_URL and a migrated schema)")
    sub.add_parser("migrate", help="apply pending database migrations, then exit")
    sub.add_parser("dev", help="migrate and serve, with an embedded PostgreSQL by default")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        config = load_config(load_environment())
    except ConfigError as exc:
        raise SystemExit(f"image-sidecar: configuration error: {exc}") from None
    COMMANDS[args.command](config)
