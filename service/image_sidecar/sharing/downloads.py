"""A share's originals, byte for byte: one picture, or all of them for the zip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

from image_sidecar import db
from image_sidecar.models import ImageRecord
from image_sidecar.sharing.links import ShareNotFound, gallery
from image_sidecar.storage.base import BlobNotFound, BlobStore


def download_name(image: ImageRecord) -> str:
    """`round-2-player-9d2f7c4a.png`: by round and player, unique within a game."""
    extension = image.image_path.rpartition(".")[2]
    return f"round-{image.round_number}-player-{str(image.player_id)[:8]}.{extension}"


async def original_bytes(
    pool: db.Pool, store: BlobStore, share_id: str, image_id: UUID
) -> tuple[ImageRecord, bytes]:
    """One picture of a live share, as uploaded (a download)."""
    shown = await gallery(pool, share_id)
    image = next((image for image in shown.images if image.image_id == image_id), None)
    if image is None:
        raise ShareNotFound
    try:
        return image, await store.read(image.image_path)
    except BlobNotFound:
        raise ShareNotFound from None


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
