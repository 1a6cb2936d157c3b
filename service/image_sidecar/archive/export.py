"""`image-sidecar export`: a game, a round or a player's pictures as one zip (`manifest.py` has
the format), streamed from the store to the file: one picture in memory at a time, whatever
the game's size. Every picture's bytes are checked against their record on the way: an export
never carries damaged bytes (it stops, names the picture, and leaves no file)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import structlog
from stream_zip import NO_COMPRESSION_64, async_stream_zip

from image_sidecar import db
from image_sidecar.archive.manifest import FORMAT, MANIFEST, VERSION, check
from image_sidecar.batch import BatchReport
from image_sidecar.db import archive as archive_rows
from image_sidecar.errors import NotFound, StorageError
from image_sidecar.storage.base import BlobStore

log = structlog.get_logger(__name__)

_WRITE_BYTES = 4 * 2**20  # the zip's chunks are gathered into writes of this size


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

    async def members() -> AsyncIterator[tuple[str, datetime, int, Any, AsyncIterator[bytes]]]:
        now = datetime.now(UTC)
        yield MANIFEST, now, 0o644, NO_COMPRESSION_64, _once(json.dumps(manifest).encode())
        for content in contents:
            key = content.image_paths[0]
            data = await store.read(key)
            digest = await asyncio.to_thread(_sha256, data)
            if len(data) != content.size_bytes or digest != content.sha256:
                raise StorageError(
                    f"the stored bytes of {key} do not match their record: run "
                    "`image-sidecar scrub`, then export again"
                )
            yield content.member, now, 0o644, NO_COMPRESSION_64, _once(data)

    partial = out.with_name(f".{out.name}.partial")
    try:
        with partial.open("wb") as file:
            report.bytes_written = await _write(async_stream_zip(members()), file)
            await asyncio.to_thread(file.flush)
        partial.replace(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _write(chunks: AsyncIterable[bytes], file: IO[bytes]) -> int:
    """The zip's chunks, gathered into large writes off the event loop; the bytes written."""
    written, pending, size = 0, [], 0
    async for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= _WRITE_BYTES:
            await asyncio.to_thread(file.write, b"".join(pending))
            written, pending, size = written + size, [], 0
    await asyncio.to_thread(file.write, b"".join(pending))
    return written + size
