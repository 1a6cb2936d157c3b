"""The batch commands (`cleanup`, `renditions --backfill`, `scrub`, `audit`, `recount`,
`migrate-store`, `export`, `import`): each opens what it needs, runs its use case with a
progress line on a terminal, prints its JSON summary on stdout and says by its exit status
whether all went well. `cli.py` parses the command line and calls them."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from image_sidecar import db, tracing
from image_sidecar.archive.export import ExportReport, Selection, export
from image_sidecar.archive.manifest import ArchiveInvalid
from image_sidecar.archive.restore import ImportReport, import_archive
from image_sidecar.batch import BatchReport, Progress
from image_sidecar.config import Config
from image_sidecar.errors import SidecarError
from image_sidecar.images.backfill import BackfillReport, backfill_renditions
from image_sidecar.images.pool import ImageProcessor
from image_sidecar.lifecycle.audit import AuditReport, run_audit
from image_sidecar.lifecycle.cleanup import CleanupReport, run_cleanup
from image_sidecar.lifecycle.scrub import ScrubReport, run_scrub
from image_sidecar.lifecycle.store_migration import (
    MigrationReport,
    StoreType,
    migrate_store,
    target_name,
    target_settings,
)
from image_sidecar.stats import recount_storage
from image_sidecar.storage import open_blob_store
from image_sidecar.storage.base import BlobStore

log = structlog.get_logger("image_sidecar.cli")
T = TypeVar("T")

# Where a running `dev` records its embedded database's URL, for `migrate` and `cleanup` run
# next to it without DATABASE_URL.
DEV_URL_FILE = "database-url"


def require_database(config: Config, command: str, *, dev_fallback: bool = False) -> str:
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


def run(coroutine: Coroutine[Any, Any, T], config: Config, *, traced: bool = True) -> T:
    """asyncio.run, traced when tracing is configured (a batch job is a trace of its own),
    reporting an unreachable database in one line instead of a traceback. A supervisor's own
    work is not traced: its workers, forked after, set tracing up for themselves."""
    provider = tracing.start() if traced else None
    try:
        return asyncio.run(coroutine)
    except (db.ConnectionFailed, OSError, TimeoutError) as exc:
        hint = ""
        if config.database.url is None:
            hint = " (the database `image-sidecar dev` uses: is `dev` running?)"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SystemExit(f"image-sidecar: cannot connect to the database{hint}: {reason}") from None
    finally:
        if provider is not None:
            provider.shutdown()  # sends what is left


def progress_on_terminal() -> Progress | None:
    """A batch command's progress line on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return None
    started = time.monotonic()

    def show(report: BatchReport) -> None:
        sys.stderr.write("\r" + report.progress_line(time.monotonic() - started))
        sys.stderr.flush()

    return show


def summarize(report: BatchReport, *, progressed: bool) -> None:
    """End the progress line, if one was drawn, and print the JSON summary on stdout."""
    if sys.stderr.isatty() and progressed:
        sys.stderr.write("\n")
    sys.stdout.write(json.dumps(report.as_dict()) + "\n")


@dataclass
class _Opened:
    pool: db.Pool
    store: BlobStore
    processor: ImageProcessor | None = None


@asynccontextmanager
async def _opened(
    config: Config,
    database_url: str,
    *,
    pool_size: int = 2,
    pictures: bool = False,
    timeout: float | None = None,
) -> AsyncIterator[_Opened]:
    """What a batch command works with: a pool (its statements bounded by `timeout`, else
    DATABASE_TIMEOUT_SECONDS), the store, and (`pictures`) a picture pool."""
    pool = await db.create_pool(
        database_url, size=pool_size, timeout=timeout or config.database.timeout_seconds
    )
    processor = None
    if pictures:
        processor = ImageProcessor(
            max_pixels=config.storage.max_pixels,
            workers=config.storage.processing_workers,
            formats=config.storage.rendition_formats,
            web_ready_max_bytes=config.storage.web_ready_max_bytes,
        )
    try:
        async with open_blob_store(config.storage) as store:
            yield _Opened(pool, store, processor)
    finally:
        if processor is not None:
            processor.close()
        await db.close_pool(pool)


async def _cleanup(
    config: Config, database_url: str, dry_run: bool, as_of: datetime | None
) -> CleanupReport:
    async with _opened(config, database_url) as opened:
        return await run_cleanup(
            opened.pool,
            opened.store,
            config.retention,
            dry_run=dry_run,
            on_batch=progress_on_terminal(),
            as_of=as_of,
        )


def cleanup(config: Config, dry_run: bool = False, as_of: datetime | None = None) -> None:
    """Run one cleanup now (or as if it were `as_of`); the summary goes to stdout as JSON, exit
    status 1 if it failed."""
    database_url = require_database(config, "cleanup", dev_fallback=True)
    report = run(_cleanup(config, database_url, dry_run, as_of), config)
    summarize(report, progressed=report.images_deleted > 0)
    if report.outcome == "failed":
        raise SystemExit(1)


async def _backfill(config: Config, database_url: str) -> BackfillReport:
    async with _opened(config, database_url, pictures=True) as opened:
        assert opened.processor is not None
        return await backfill_renditions(
            opened.pool, opened.store, opened.processor, on_progress=progress_on_terminal()
        )


def renditions(config: Config) -> None:
    """Make the renditions of images stored before renditions existed; resumable. The summary
    goes to stdout as JSON; exit status 1 if some image could not be done."""
    database_url = require_database(config, "renditions", dev_fallback=True)
    report = run(_backfill(config, database_url), config)
    summarize(report, progressed=report.images > 0 or report.hashed > 0)
    if report.failed:
        raise SystemExit(1)


async def _scrub(config: Config, database_url: str, one_slice: bool) -> ScrubReport:
    async with _opened(config, database_url, pictures=True) as opened:
        assert opened.processor is not None
        return await run_scrub(
            opened.pool,
            opened.store,
            opened.processor,
            max_bytes_per_second=config.retention.scrub_max_bytes_per_second,
            cycle_days=config.retention.scrub_cycle_days if one_slice else None,
            on_progress=progress_on_terminal(),
        )


def scrub(config: Config, one_slice: bool = False) -> None:
    """Read the stored files back and check them, to the end of the cycle under way (or, with
    `one_slice`, the slice a scheduled run checks); repair what can be; the summary goes to
    stdout as JSON, exit status 1 if something could not be repaired (or the run failed)."""
    database_url = require_database(config, "scrub", dev_fallback=True)
    report = run(_scrub(config, database_url, one_slice), config)
    summarize(report, progressed=report.files_checked > 0)
    if report.outcome == "failed" or report.unrecoverable:
        raise SystemExit(1)


async def _audit(
    config: Config, database_url: str, dry_run: bool, max_seconds: float | None
) -> AuditReport:
    async with _opened(config, database_url) as opened:
        return await run_audit(
            opened.pool,
            opened.store,
            grace_seconds=config.retention.orphan_grace_seconds,
            files_per_second=config.retention.audit_files_per_second,
            dry_run=dry_run,
            max_seconds=max_seconds,
            on_progress=progress_on_terminal(),
        )


def audit(config: Config, dry_run: bool = False, max_seconds: float | None = None) -> None:
    """Walk the whole store for files no row names (deleting them unless `dry_run`); the
    summary goes to stdout as JSON, exit status 1 if the run failed."""
    database_url = require_database(config, "audit", dev_fallback=True)
    report = run(_audit(config, database_url, dry_run, max_seconds), config)
    summarize(report, progressed=report.files_checked > 0)
    if report.outcome == "failed":
        raise SystemExit(1)


async def _recount(config: Config, database_url: str) -> dict[str, Any]:
    # A recount reads both tables whole: an hour's bound, not a request's.
    async with _opened(config, database_url, timeout=3600) as opened:
        return await recount_storage(opened.pool)


def recount(config: Config) -> None:
    """Rebuild the storage totals from the rows; print the figures before and after as JSON."""
    database_url = require_database(config, "recount", dev_fallback=True)
    sys.stdout.write(json.dumps(run(_recount(config, database_url), config)) + "\n")


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
                on_progress=progress_on_terminal(),
            )
    finally:
        await db.close_pool(pool)


def migrate_store_command(config: Config, to: StoreType, dry_run: bool = False) -> None:
    """Copy every live image and its renditions to the other store, verified and resumable.
    The summary goes to stdout as JSON; exit status 1 if some file could not be copied."""
    database_url = require_database(config, "migrate-store", dev_fallback=True)
    try:
        report = run(_migrate_store(config, database_url, to, dry_run), config)
    except SidecarError as exc:
        raise SystemExit(f"image-sidecar migrate-store: {exc.message}") from None
    summarize(report, progressed=report.files > 0)
    if report.failed:
        raise SystemExit(1)


async def _export(
    config: Config, database_url: str, selection: Selection, out: Path
) -> ExportReport:
    async with _opened(config, database_url) as opened:
        return await export(opened.pool, opened.store, selection, out)


def export_command(config: Config, selection: Selection, out: Path) -> None:
    """A game, a round or a player's pictures as one zip; the summary goes to stdout as JSON.
    Exits non-zero, leaving no file, when the selection is empty or a stored picture does not
    match its record."""
    database_url = require_database(config, "export", dev_fallback=True)
    try:
        report = run(_export(config, database_url, selection, out), config)
    except SidecarError as exc:
        raise SystemExit(f"image-sidecar export: {exc.message}") from None
    summarize(report, progressed=False)


async def _import(
    config: Config, database_url: str, archive: Path, expires_in_days: int | None
) -> ImportReport:
    async with _opened(config, database_url) as opened:
        return await import_archive(
            opened.pool, opened.store, archive, expires_in_days=expires_in_days
        )


def import_command(config: Config, archive: Path, expires_in_days: int | None = None) -> None:
    """An archive's records and bytes back in, all verified first; the summary goes to stdout
    as JSON. A damaged or tampered archive writes nothing and exits non-zero naming why."""
    database_url = require_database(config, "import", dev_fallback=True)
    try:
        report = run(_import(config, database_url, archive, expires_in_days), config)
    except ArchiveInvalid as exc:
        raise SystemExit(f"image-sidecar import: nothing imported: {exc}") from None
    except SidecarError as exc:
        raise SystemExit(f"image-sidecar import: nothing imported: {exc.message}") from None
    summarize(report, progressed=False)
