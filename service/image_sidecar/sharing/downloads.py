"""A share's originals, byte for byte: one picture, or all of them for the zip."""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

from image_sidecar import db
from image_sidecar.models import ImageRecord
from image_sidecar.sharing.links import ShareNotFound, gallery
from image_sidecar.storage.base import BlobNotFound, BlobStore

# What a file name must not hold on any system players download to, and the bidirectional
# controls that could make `evil\u202egnp.exe` read as an innocent picture.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|\u200e\u200f\u202a-\u202e\u2066-\u2069]')
_SPACES = re.compile(r"\s+")


def _who(image: ImageRecord) -> str:
    """The player's name made safe for a file name, else `player-{player_id}` (whole: ids
    that are ordered by time share their first characters)."""
    if image.player_name:
        name = _SPACES.sub("-", _UNSAFE.sub("_", image.player_name)).strip(".-_")
        if name:
            return name
    return f"player-{image.player_id}"


def download_names(images: list[ImageRecord]) -> dict[UUID, str]:
    """`round-2-Ana.png` or `round-2-player-{player_id}.png` for each picture, unique among
    `images` (a name two players share gets `-2`, `-3`...), so that no picture of a zip is
    lost when it is unpacked."""
    names: dict[UUID, str] = {}
    taken: set[str] = set()
    for image in images:
        extension = image.image_path.rpartition(".")[2]
        stem = f"round-{image.round_number}-{_who(image)}"
        name, copy = f"{stem}.{extension}", 1
        while name.casefold() in taken:  # also unique where file names ignore case
            copy += 1
            name = f"{stem}-{copy}.{extension}"
        taken.add(name.casefold())
        names[image.image_id] = name
    return names


async def original_bytes(
    pool: db.Pool, store: BlobStore, share_id: str, image_id: UUID
) -> tuple[ImageRecord, str, bytes]:
    """One picture of a live share, as uploaded (a download), with its name in the share."""
    shown = await gallery(pool, share_id)
    image = next((image for image in shown.images if image.image_id == image_id), None)
    if image is None:
        raise ShareNotFound
    try:
        data = await store.read(image.image_path)
    except BlobNotFound:
        raise ShareNotFound from None
    return image, download_names(shown.images)[image_id], data


async def originals(
    store: BlobStore, images: list[ImageRecord]
) -> AsyncIterator[tuple[ImageRecord, bytes]]:
    """Each picture's bytes in turn (one in memory at a time), skipping any deleted meanwhile."""
    for image in images:
        try:
            data = await store.read(image.image_path)
        except BlobNotFound:
            continue
        yield image, data


async def zipped(members: AsyncIterator[tuple[str, datetime, bytes]]) -> AsyncIterator[bytes]:
    """A zip of `(name, modified, data)` members, stored as they are (the pictures are
    compressed already), in chunks as each member is added: the archive is never whole in
    memory. The standard library's zipfile writes it, told it cannot seek, so each member's
    sizes and CRC follow its data; the CRC is taken in a thread, off the event loop."""
    sink = _Chunks()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED)
    async for name, modified, data in members:
        member = zipfile.ZipInfo(name, date_time=modified.timetuple()[:6])
        member.external_attr = 0o644 << 16
        await asyncio.to_thread(archive.writestr, member, data)
        yield sink.take()
    archive.close()  # the central directory
    yield sink.take()


class _Chunks(io.RawIOBase):
    """A write-only stream that keeps what is written until it is taken."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        taken = b"".join(self._chunks)
        self._chunks.clear()
        return taken
