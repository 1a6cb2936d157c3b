"""Moving the images from one store to the other (`image-sidecar migrate-store --to ...`).

Every live image's original and renditions are read from the configured store, written to the
other, read back and verified (size, and SHA-256 against the recorded digest for originals or
the source's for renditions), then recorded in `store_copies`. An interrupted run goes on where
it stopped, a finished one finds nothing to do, and the source is only ever read. Switching over
is the operator's: run it, set IMAGE_STORAGE_TYPE, restart, verify, then remove the source.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, replace
from typing import Literal

import structlog

from image_sidecar import db
from image_sidecar.batch import BatchReport, Progress, time_left
from image_sidecar.config import StorageSettings
from image_sidecar.db import stats as stats_rows
from image_sidecar.db import store_copies as copy_rows
from image_sidecar.db.store_copies import StoredFile
from image_sidecar.errors import SidecarError
from image_sidecar.storage.base import BlobStore
from image_sidecar.tracing import span, traced

log = structlog.get_logger(__name__)

StoreType = Literal["filesystem", "s3"]
_BATCH = 200
_CONCURRENT_COPIES = 8


@dataclass(kw_only=True)
class MigrationReport(BatchReport):
    to: str
    target: str
    dry_run: bool = False
    files: int = 0  # live files the target should hold, as far as the walk has come
    files_expected: int | None = None  # the store's files by the database's totals
    already_copied: int = 0  # by an earlier run
    copied: int = 0
    bytes_copied: int = 0
    failed: int = 0
    seconds: float = 0.0

    def progress_line(self, elapsed_seconds: float) -> str:
        done = self.already_copied + self.copied
        line = (
            f"migrate-store: {done}/{self.files} files, "
            f"{self.bytes_copied / 1e6:.1f} MB copied ({self.failed} failed)"
        )
        if self.files_expected:
            walked = self.files - self.already_copied  # this run's share of the walk so far
            rest = max(self.files_expected - self.files, 0)
            line += time_left(walked / max(walked + rest, 1), elapsed_seconds)
        return line


def target_settings(settings: StorageSettings, to: StoreType) -> StorageSettings:
    """The store to copy into: the other backend, configured by the same settings."""
    if to == settings.type:
        raise SidecarError(f"IMAGE_STORAGE_TYPE is {to} already: nothing to migrate")
    if to == "s3" and settings.s3.bucket is None:
        raise SidecarError("--to s3 needs IMAGE_S3_BUCKET (and the other IMAGE_S3_ settings)")
    return replace(settings, type=to)


def target_name(settings: StorageSettings) -> str:
    if settings.type == "s3":
        return f"s3://{settings.s3.bucket}"
    return f"file://{settings.base_dir.resolve()}"


class CopyFailed(SidecarError):
    pass


@traced("store_migration.run", job=True)
async def migrate_store(
    pool: db.Pool,
    source: BlobStore,
    target: BlobStore,
    target_label: str,
    *,
    to: StoreType,
    dry_run: bool = False,
    on_progress: Progress | None = None,
) -> MigrationReport:
    started = time.monotonic()
    report = MigrationReport(to=to, target=target_label, dry_run=dry_run)
    async with db.cursor(pool) as cur:
        report.already_copied = await copy_rows.already_copied(cur, target_label)
        report.files_expected = (await stats_rows.storage_totals(cur)).stored_files
    report.files = report.already_copied
    limit = asyncio.Semaphore(_CONCURRENT_COPIES)

    async def copy(file: StoredFile) -> None:
        async with limit:
            try:
                digest = await _copy_verified(source, target, file)
            except SidecarError as exc:
                report.count_failure(file.image_path)
                log.warning("store_copy_failed", key=file.image_path, error=exc.message)
                return
            async with db.cursor(pool) as cur:
                await copy_rows.record_copy(
                    cur, target_label, file.image_path, file.size_bytes, digest
                )
            report.copied += 1
            report.bytes_copied += file.size_bytes

    after = ""
    while True:
        with span("store_migration.batch"):
            async with db.cursor(pool) as cur:
                batch = await copy_rows.files_to_copy(cur, target_label, after, _BATCH)
            if not batch:
                break
            after = batch[-1].image_path
            report.files += len(batch)
            if not dry_run:
                await asyncio.gather(*(copy(file) for file in batch))
            if on_progress is not None:
                on_progress(report)
    report.seconds = round(time.monotonic() - started, 3)
    log.info("store_migrated", **report.as_dict())
    return report


async def _copy_verified(source: BlobStore, target: BlobStore, file: StoredFile) -> str:
    """Copy one file and read it back; its SHA-256. CopyFailed when anything does not match."""
    data = await source.read(file.image_path)
    digest = await asyncio.to_thread(_sha256, data)
    if len(data) != file.size_bytes or (file.sha256 is not None and digest != file.sha256):
        raise CopyFailed(f"the source of {file.image_path} is not what the database recorded")
    await target.put(file.image_path, data, file.content_type, digest)
    copied = await target.read(file.image_path)
    if len(copied) != len(data) or await asyncio.to_thread(_sha256, copied) != digest:
        raise CopyFailed(f"the copy of {file.image_path} differs from its source")
    return digest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
