"""`image-sidecar serve | migrate | dev | cleanup | renditions --backfill | scrub |
migrate-store`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

import structlog

from image_sidecar import db
from image_sidecar.app import create_app
from image_sidecar.batch import BatchReport, Progress
from image_sidecar.config import Config, ConfigError, load_config, load_environment
from image_sidecar.db.embedded import ensure_database, start_embedded_postgres
from image_sidecar.errors import SidecarError
from image_sidecar.images.backfill import BackfillReport, backfill_renditions
from image_sidecar.images.decoding import ImageProcessor
from image_sidecar.lifecycle.cleanup import CleanupReport, run_cleanup
from image_sidecar.lifecycle.scrub import ScrubReport, run_scrub
from image_sidecar.lifecycle.store_migration import (
    MigrationReport,
    StoreType,
    migrate_store,
    target_name,
    target_settings,
)
from image_sidecar.log import configure_logging
from image_sidecar.server import serve_until_stopped, serve_workers
from image_sidecar.storage import open_blob_store

log = structlog.get_logger("image_sidecar.cli")
T = TypeVar("T")

DEV_DATABASE = "image_sidecar"
# Where a running `dev` records its embedded database's URL, for `migrate` and `cleanup` run
# next to it without DATABASE_URL.
DEV_URL_FILE = "database-url"


def _require_database(config: Config, command: str, *, dev_fallback: bool = False) -> str:
    if config.database.url is not None:
        return config.database.url
    recorded = config.server.dev_data_dir / DEV_URL_FILE
    if dev_fallback and recorded.is_file():
        log.info("using_dev_database", recorded_in=str(recorded))  # what `dev` wrote there
        return recorded.read_text().strip()
    raise SystemExit(
        f"image-sidecar {command}: DATABASE_URL is not set "
        "(use `image-sidecar dev` for an embedded PostgreSQL)"
    )


def _run(coroutine: Coroutine[Any, Any, T], config: Config) -> T:
    """asyncio.run, reporting an unreachable database in one line instead of a traceback."""
    try:
        return asyncio.run(coroutine)
    except (db.ConnectionFailed, OSError, TimeoutError) as exc:
        hint = ""
        if config.database.url is None:
            hint = " (the database `image-sidecar dev` uses: is `dev` running?)"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SystemExit(f"image-sidecar: cannot connect to the database{hint}: {reason}") from None


def migrate(config: Config) -> None:
    url = _require_database(config, "migrate", dev_fallback=True)
    applied = _run(db.migrate_database(url), config)
    log.info("migrations_applied", applied=applied, count=len(applied))


def serve(config: Config, command: str = "serve") -> None:
    _require_database(config, command)
    log.info("starting", storage=str(config.storage.base_dir), workers=config.server.workers)
    try:
        if config.server.workers > 1:
            assert config.database.url is not None  # _require_database
            _run(db.check_schema(config.database.url, config.database.timeout_seconds), config)
            serve_workers(config, create_app)
        else:
            asyncio.run(serve_until_stopped(create_app(config), config.server))
    except db.SchemaBehind as exc:
        raise SystemExit(f"image-sidecar {command}: {exc.message}") from None
    except (db.ConnectionFailed, OSError) as exc:
        raise SystemExit(f"image-sidecar {command}: cannot start: {exc}") from None


def dev(config: Config) -> None:
    """Serve with an embedded PostgreSQL under IMAGE_SIDECAR_DEV_DATA_DIR unless DATABASE_URL."""
    if config.database.url is not None:
        migrate(config)
        serve(config, "dev")
        return
    data_dir = config.server.dev_data_dir
    server = start_embedded_postgres(data_dir / "postgres")
    url = server.get_uri(DEV_DATABASE)
    recorded = data_dir / DEV_URL_FILE
    try:
        ensure_database(server.get_uri(), DEV_DATABASE)
        recorded.write_text(url + "\n")  # the same on every start: the socket is in data_dir
        log.info("embedded_postgres_started", data_dir=str(data_dir / "postgres"))
        config = replace(config, database=replace(config.database, url=url))
        migrate(config)
        serve(config, "dev")
    finally:
        server.cleanup()
        log.info("embedded_postgres_stopped")


def _progress_on_terminal() -> Progress | None:
    """A batch command's progress line on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return None
    started = time.monotonic()

    def show(report: BatchReport) -> None:
        sys.stderr.write("\r" + report.progress_line(time.monotonic() - started))
        sys.stderr.flush()

    return show


def _summarize(report: BatchReport, *, progressed: bool) -> None:
    """End the progress line, if one was drawn, and print the JSON summary on stdout."""
    if sys.stderr.isatty() and progressed:
        sys.stderr.write("\n")
    sys.stdout.write(json.dumps(report.as_dict()) + "\n")


async def _cleanup(
    config: Config, database_url: str, dry_run: bool, as_of: datetime | None
) -> CleanupReport:
    pool = await db.create_pool(database_url, size=2, timeout=config.database.timeout_seconds)
    try:
        async with open_blob_store(config.storage) as store:
            return await run_cleanup(
                pool,
                store,
                config.retention,
                dry_run=dry_run,
                on_batch=_progress_on_terminal(),
                as_of=as_of,
            )
    finally:
        await db.close_pool(pool)


def cleanup(config: Config, dry_run: bool = False, as_of: datetime | None = None) -> None:
    """Run one cleanup now (or as if it were `as_of`); the summary goes to stdout as JSON, exit
    status 1 if it failed."""
    database_url = _require_database(config, "cleanup", dev_fallback=True)
    report = _run(_cleanup(config, database_url, dry_run, as_of), config)
    _summarize(report, progressed=report.images_deleted > 0)
    if report.outcome == "failed":
        raise SystemExit(1)


async def _backfill(config: Config, database_url: str) -> BackfillReport:
    pool = await db.create_pool(database_url, size=2, timeout=config.database.timeout_seconds)
    processor = ImageProcessor(
        max_pixels=config.storage.max_pixels,
        workers=config.storage.processing_workers,
        formats=config.storage.rendition_formats,
    )
    try:
        async with open_blob_store(config.storage) as store:
            return await backfill_renditions(
                pool, store, processor, on_progress=_progress_on_terminal()
            )
    finally:
        processor.close()
        await db.close_pool(pool)


def renditions(config: Config) -> None:
    """Make the renditions of images stored before renditions existed; resumable. The summary
    goes to stdout as JSON; exit status 1 if some image could not be done."""
    database_url = _require_database(config, "renditions", dev_fallback=True)
    report = _run(_backfill(config, database_url), config)
    _summarize(report, progressed=report.images > 0 or report.hashed > 0)
    if report.failed:
        raise SystemExit(1)


async def _scrub(config: Config, database_url: str) -> ScrubReport:
    pool = await db.create_pool(database_url, size=2, timeout=config.database.timeout_seconds)
    processor = ImageProcessor(
        max_pixels=config.storage.max_pixels,
        workers=config.storage.processing_workers,
        formats=config.storage.rendition_formats,
    )
    try:
        async with open_blob_store(config.storage) as store:
            return await run_scrub(
                pool,
                store,
                processor,
                max_bytes_per_second=config.retention.scrub_max_bytes_per_second,
                on_progress=_progress_on_terminal(),
            )
    finally:
        processor.close()
        await db.close_pool(pool)


def scrub(config: Config) -> None:
    """Read every stored file back and check it; repair what can be; the summary goes to
    stdout as JSON, exit status 1 if something could not be repaired (or the run failed)."""
    database_url = _require_database(config, "scrub", dev_fallback=True)
    report = _run(_scrub(config, database_url), config)
    _summarize(report, progressed=report.files_checked > 0)
    if report.outcome == "failed" or report.unrecoverable:
        raise SystemExit(1)


async def _migrate_store(
    config: Config, database_url: str, to: StoreType, dry_run: bool
) -> MigrationReport:
    target_config = target_settings(config.storage, to)
    pool = await db.create_pool(database_url, size=4, timeout=config.database.timeout_seconds)
    try:
        async with (
            open_blob_store(config.storage) as source,
            open_blob_store(target_config) as target,
        ):
            return await migrate_store(
                pool,
                source,
                target,
                target_name(target_config),
                to=to,
                dry_run=dry_run,
                on_progress=_progress_on_terminal(),
            )
    finally:
        await db.close_pool(pool)


def migrate_store_command(config: Config, to: StoreType, dry_run: bool = False) -> None:
    """Copy every live image and its renditions to the other store, verified and resumable.
    The summary goes to stdout as JSON; exit status 1 if some file could not be copied."""
    database_url = _require_database(config, "migrate-store", dev_fallback=True)
    try:
        report = _run(_migrate_store(config, database_url, to, dry_run), config)
    except SidecarError as exc:
        raise SystemExit(f"image-sidecar migrate-store: {exc.message}") from None
    _summarize(report, progressed=report.files > 0)
    if report.failed:
        raise SystemExit(1)


def _instant(raw: str) -> datetime:
    """An ISO 8601 instant with its offset (Z for UTC)."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 instant") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{raw!r} needs its UTC offset (e.g. Z or +02:00)")
    return moment


COMMANDS: dict[str, Callable[[Config], None]] = {"serve": serve, "migrate": migrate, "dev": dev}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="image-sidecar", description="Image sidecar of the Picture This game server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "serve the HTTP API (needs DATABASE_URL and a migrated schema)"),
        ("dev", "migrate and serve, with an embedded PostgreSQL by default"),
    ):
        sub.add_parser(name, help=text).add_argument(
            "--workers",
            help="worker processes on the one port: auto (one per core) or a number "
            "(default: IMAGE_SIDECAR_WORKERS)",
        )
    sub.add_parser("migrate", help="apply pending database migrations, then exit")
    cleanup_parser = sub.add_parser(
        "cleanup", help="delete expired images and orphan files now, print a JSON summary"
    )
    cleanup_parser.add_argument(
        "--dry-run",
        action="store_true",
        help="only count what the run would delete (images, files, bytes, cache entries)",
    )
    cleanup_parser.add_argument(
        "--as-of",
        type=_instant,
        metavar="INSTANT",
        help="take this ISO 8601 instant (e.g. 2030-01-01T00:00Z) as now: delete what will "
        "have expired by then",
    )
    renditions_parser = sub.add_parser(
        "renditions", help="make the web renditions of images stored before they existed"
    )
    renditions_parser.add_argument(
        "--backfill",
        action="store_true",
        required=True,
        help="walk the live images without renditions (resumable: run it again after a stop)",
    )
    sub.add_parser(
        "scrub",
        help="read every stored file back and compare it with its record; re-make damaged "
        "renditions, restore or take out of service damaged originals (resumable)",
    )
    store_parser = sub.add_parser(
        "migrate-store",
        help="copy every live image and its renditions to the other store, verified "
        "(resumable; the source is left as it is)",
    )
    store_parser.add_argument("--to", choices=["s3", "filesystem"], required=True)
    store_parser.add_argument(
        "--dry-run", action="store_true", help="only count what would be copied"
    )
    args = parser.parse_args(argv)
    configure_logging()
    environ = load_environment()
    if getattr(args, "workers", None) is not None:
        environ["IMAGE_SIDECAR_WORKERS"] = args.workers
    try:
        config = load_config(environ, listening=args.command in ("serve", "dev"))
    except ConfigError as exc:
        raise SystemExit(f"image-sidecar: configuration error: {exc}") from None
    if args.command == "cleanup":
        cleanup(config, dry_run=args.dry_run, as_of=args.as_of)
    elif args.command == "renditions":
        renditions(config)
    elif args.command == "scrub":
        scrub(config)
    elif args.command == "migrate-store":
        migrate_store_command(config, args.to, dry_run=args.dry_run)
    else:
        COMMANDS[args.command](config)
