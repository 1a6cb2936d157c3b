"""`image-sidecar export`: a game, a round or a player's pictures as one zip (`manifest.py` has
the format), streamed from the store to the file: one picture in memory at a time, whatever
the game's size. Every picture's bytes are checked against their record on the way: an export
never carries damaged bytes (it stops, names the picture, and leaves no file)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import queue
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog

from image_sidecar import db
from image_sidecar.archive.manifest import FORMAT, MANIFEST, VERSION, Content, check
from image_sidecar.batch import BatchReport
from image_sidecar.db import archive as archive_rows
from image_sidecar.errors import NotFound, StorageError
from image_sidecar.storage.base import BlobStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Selection:
    """What to export: a game (by id, or the newest game of a code), a round of it, or one
    player's pictures in every game."""

    game_id: UUID | None = None
    game_code: str | None = None
    round_number: int | None = None
    player_id: UUID | None = None


@dataclass
class ExportReport(BatchReport):
    images: int = 0
    contents: int = 0  # distinct bytes: reuses share theirs
    bytes_written: int = 0
    game_ids: list[str] | None = None
    seconds: float = 0.0

    def progress_line(self, elapsed_seconds: float) -> str:
        return f"export: {self.contents} pictures, {self.bytes_written / 2**20:.0f} MiB"


async def export(pool: db.Pool, store: BlobStore, selection: Selection, out: Path) -> ExportReport:
    """Write the archive to `out` (through a temp file: `out` appears whole or not at all)."""
    started = time.monotonic()
    manifest = await _manifest(pool, selection)
    contents = check(manifest)
    report = ExportReport(
        images=len(manifest["generated_images"]),
        contents=len(contents),
        game_ids=[game["game_id"] for game in manifest["games"]],
    )

    partial = out.with_name(f".{out.name}.partial")
    # One thread writes the zip (zipfile is synchronous: CRCs, headers, writes), fed whole
    # pictures through a queue of two, so the event loop hands over one picture at a time, not
    # each chunk, and memory holds at most three pictures.
    pictures: queue.Queue[tuple[Content, bytes] | None] = queue.Queue(maxsize=2)
    writing = asyncio.ensure_future(
        asyncio.to_thread(_write_zip, partial, json.dumps(manifest).encode(), pictures)
    )
    try:
        for content in contents:
            data = await store.read(content.image_paths[0])
            await _handed_over(pictures, (content, data), writing)
        await _handed_over(pictures, None, writing)
        report.bytes_written = await writing
        await asyncio.to_thread(partial.replace, out)
    finally:
        if not writing.done():  # stopped early: let the writer end, then drop its file
            await asyncio.to_thread(_drain, pictures)
            await asyncio.to_thread(pictures.put, None)
            with contextlib.suppress(Exception):
                await writing
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(partial.unlink)
    report.seconds = round(time.monotonic() - started, 3)
    log.info("exported", out=str(out), **report.as_dict())
    return report


async def _manifest(pool: db.Pool, selection: Selection) -> dict[str, Any]:
    async with db.cursor(pool) as cur:
        game_id = selection.game_id
        if game_id is None and selection.game_code is not None:
            game_id = await archive_rows.newest_game(cur, selection.game_code)
            if game_id is None:
                raise NotFound(f"no game has the code {selection.game_code}")
        tables = await archive_rows.selected_rows(
            cur, game_id, selection.round_number, selection.player_id
        )
    if not tables["generated_images"]:
        raise NotFound("the selection holds no live picture")
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "selection": {
            "game_id": None if game_id is None else str(game_id),
            "round_number": selection.round_number,
            "player_id": None if selection.player_id is None else str(selection.player_id),
        },
        **tables,
    }


async def _handed_over(
    pictures: queue.Queue[tuple[Content, bytes] | None],
    item: tuple[Content, bytes] | None,
    writing: asyncio.Future[int],
) -> None:
    """Put `item` in the writer's queue, waiting (off the event loop) while it is full; the
    writer's own error if it stopped."""
    while not writing.done():
        try:
            await asyncio.to_thread(pictures.put, item, timeout=0.1)
            return
        except queue.Full:
            continue
    await writing  # raises what stopped it
    raise StorageError("the archive's writer stopped early")


def _write_zip(
    path: Path, manifest: bytes, pictures: queue.Queue[tuple[Content, bytes] | None]
) -> int:
    """Write the zip (blocking: run it in a thread); the bytes written. Each picture's bytes
    are checked against their record first: an export never carries damaged bytes. Members
    are stored as they are (the pictures are compressed already), with ZIP64 records where an
    export passes 4 GB."""
    now = datetime.now(UTC).timetuple()[:6]

    def member(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=now)
        info.external_attr = 0o644 << 16
        return info

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(member(MANIFEST), manifest)
        while (item := pictures.get()) is not None:
            content, data = item
            if len(data) != content.size_bytes or _sha256(data) != content.sha256:
                raise StorageError(
                    f"the stored bytes of {content.image_paths[0]} do not match their record: "
                    "run `image-sidecar scrub`, then export again"
                )
            archive.writestr(member(content.member), data)
    return path.stat().st_size


def _drain(pictures: queue.Queue[tuple[Content, bytes] | None]) -> None:
    with contextlib.suppress(queue.Empty):
        while True:
            pictures.get_nowait()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
