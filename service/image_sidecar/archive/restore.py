"""`image-sidecar import`: an archive's records and bytes back into this deployment.

First everything is verified and nothing written: the manifest (`manifest.check`), that each
content's member is there and nothing else is, and every member's size and SHA-256 (read in
chunks, in a thread). Contents that were taken down here are refused. Then one transaction
restores the rows with their ids, sentences, winners and expiry (or a new expiry), and writes
the bytes beside them: linked from an image in service that holds them already, else written
from the archive. Rows already present are left as they are, so a second import changes
nothing. A failure part way rolls back the rows and deletes the bytes it wrote.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from image_sidecar import db
from image_sidecar.archive.manifest import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    TABLES,
    ArchiveInvalid,
    Content,
    check,
)
from image_sidecar.batch import BatchReport
from image_sidecar.db import archive as archive_rows
from image_sidecar.images.formats import of_key
from image_sidecar.images.keys import key_prefix
from image_sidecar.images.writer import transaction_with_blobs
from image_sidecar.storage.base import BlobStore, NewBlob

log = structlog.get_logger(__name__)

_CHUNK = 2**20


@dataclass
class ImportReport(BatchReport):
    images: int = 0  # in the archive
    images_restored: int = 0
    images_present: int = 0  # there already: left as they are
    files_written: int = 0
    files_linked: int = 0
    bytes_written: int = 0
    winners_restored: int = 0
    cache_entries_restored: int = 0  # prompts the restored pictures answer again (paid once)
    already_expired: int = 0  # restored with an expiry in the past (see --expires-in-days)
    seconds: float = 0.0

    def progress_line(self, elapsed_seconds: float) -> str:
        return f"import: {self.images_restored} images restored"


async def import_archive(
    pool: db.Pool, store: BlobStore, archive: Path, *, expires_in_days: int | None = None
) -> ImportReport:
    started = time.monotonic()
    manifest, contents = await asyncio.to_thread(verify, archive)
    report = ImportReport(images=len(manifest["generated_images"]))
    async with db.cursor(pool) as cur:
        blocked = await archive_rows.blocked(cur, [content.sha256 for content in contents])
    if blocked:
        raise ArchiveInvalid(f"the archive holds content taken down here: {', '.join(blocked)}")
    if expires_in_days is not None:
        expiry = (datetime.now(UTC) + timedelta(days=expires_in_days)).isoformat()
        for row in manifest["generated_images"]:
            row["expires_at"] = expiry
    report.already_expired = sum(
        datetime.fromisoformat(row["expires_at"]) <= datetime.now(UTC)
        for row in manifest["generated_images"]
    )
    zipped = await asyncio.to_thread(zipfile.ZipFile, archive)  # reads the central directory
    try:
        await _restore(pool, store, zipped, manifest, contents, report)
    finally:
        await asyncio.to_thread(zipped.close)
    report.seconds = round(time.monotonic() - started, 3)
    log.info("imported", archive=str(archive), **report.as_dict())
    return report


def verify(archive: Path) -> tuple[dict[str, Any], list[Content]]:
    """The manifest and its contents, once every byte is found as it says (blocking: run it in
    a thread); ArchiveInvalid naming what is wrong otherwise."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = {info.filename: info for info in zipped.infolist()}
            info = members.pop(MANIFEST, None)
            if info is None or info.file_size > MAX_MANIFEST_BYTES:
                raise ArchiveInvalid(f"no {MANIFEST} (or one too large to be one)")
            try:
                manifest = json.loads(zipped.read(info))
            except ValueError as exc:
                raise ArchiveInvalid(f"{MANIFEST} is not JSON: {exc}") from None
            contents = check(manifest)
            for content in contents:
                found = members.pop(content.member, None)
                if found is None:
                    raise ArchiveInvalid(f"{content.member} is missing")
                if (
                    found.file_size != content.size_bytes
                    or _digest(zipped, found) != content.sha256
                ):
                    raise ArchiveInvalid(f"{content.member} does not match its SHA-256")
            if members:
                raise ArchiveInvalid(f"unexpected members: {', '.join(sorted(members)[:5])}")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArchiveInvalid(f"{archive} is not a readable zip: {exc}") from None
    return manifest, contents


def _digest(zipped: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    with zipped.open(info) as member:  # a damaged member also fails its CRC here
        while chunk := member.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def _restore(
    pool: db.Pool,
    store: BlobStore,
    zipped: zipfile.ZipFile,
    manifest: dict[str, Any],
    contents: list[Content],
    report: ImportReport,
) -> None:
    rows = manifest["generated_images"]
    places = [key_prefix(row["image_path"]) for row in rows]
    async with transaction_with_blobs(pool, store, places) as (cur, staged):
        present = await archive_rows.present_images(cur, [row["image_id"] for row in rows])
        for row in rows:
            if present.get(row["image_id"], row["sha256"]) != row["sha256"]:
                raise ArchiveInvalid(f"image {row['image_id']} is stored here with other bytes")
        report.images_present = len(present)
        new_keys = {row["image_path"] for row in rows if row["image_id"] not in present}
        for content in contents:
            keys = [key for key in content.image_paths if key in new_keys]
            if not keys:
                continue
            source = await archive_rows.stored_copy(cur, content.sha256)
            if source is None:
                data = await asyncio.to_thread(zipped.read, content.member)
                kind = of_key(keys[0])
                assert kind is not None  # manifest.check refused any other key
                await staged.put_many([NewBlob(keys[0], data, kind.content_type, content.sha256)])
                report.files_written += 1
                report.bytes_written += len(data)
                source, keys = keys[0], keys[1:]
            await staged.link_many([(source, key, content.size_bytes) for key in keys])
            report.files_linked += len(keys)
        for table in TABLES:
            inserted = await archive_rows.insert_rows(cur, table, manifest[table])
            if table == "generated_images":
                report.images_restored = inserted
            elif table == "round_winners":
                report.winners_restored = inserted
        restored = await archive_rows.present_images(cur, [row["image_id"] for row in rows])
        lost = [row["image_id"] for row in rows if row["image_id"] not in restored]
        if lost:  # a player's slot or a submission id taken here by another picture
            raise ArchiveInvalid(f"images conflict with pictures stored here: {', '.join(lost)}")
        report.cache_entries_restored = await archive_rows.restore_cache_entries(
            cur, [row["image_id"] for row in rows if row["image_id"] not in present]
        )
