"""Where an image and its renditions are stored: the storage key layout, decided here only.

`game-{CODE}-{game_id}/round-{n}/player-{player_id}.{ext}`, the seed's three levels with the
game directory telling apart games that share a room code; renditions sit beside their original
(`player-{id}.thumb.webp`). Every part is validated by the API before it gets here. Keys issued
before game ids were in the path stay as they are: a record keeps the key it was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from image_sidecar.images.decoding import Rendition
from image_sidecar.models import ImageMetadata, StoredBytes, StoredRendition


def image_key(meta: ImageMetadata, extension: str) -> str:
    """The key of a new picture of the player `meta` names, in its game and round."""
    return (
        f"game-{meta.game_code}-{meta.game_id}/round-{meta.round_number}/"
        f"player-{meta.player_id}.{extension}"
    )


def rendition_key(image_key: str, name: str, image_format: str) -> str:
    """Beside its original: `player-{id}.png` has `player-{id}.thumb.webp`, `...large.avif`."""
    return f"{image_key.rpartition('.')[0]}.{name}.{image_format}"


def renditions_beside(
    key: str, renditions: Iterable[StoredRendition]
) -> tuple[StoredRendition, ...]:
    """The same renditions, stored beside the image under `key` (a reuse shares their bytes)."""
    return tuple(
        replace(rendition, image_path=rendition_key(key, rendition.name, rendition.format))
        for rendition in renditions
    )


def stored_renditions(key: str, rendered: Iterable[Rendition]) -> tuple[StoredRendition, ...]:
    """Where freshly made renditions of the image under `key` are stored, and their facts."""
    return tuple(
        StoredRendition(
            name=made.name,
            format=made.format,
            image_path=rendition_key(key, made.name, made.format),
            content_type=made.content_type,
            width=made.width,
            height=made.height,
            size_bytes=len(made.data),
        )
        for made in rendered
    )


def rendition_blobs(
    stored: tuple[StoredRendition, ...], rendered: tuple[Rendition, ...]
) -> list[tuple[StoredBytes, bytes]]:
    """Freshly made renditions, as the bytes to write where `stored_renditions` put them."""
    return [
        (
            StoredBytes(where.image_path, where.content_type, where.size_bytes, made.sha256),
            made.data,
        )
        for where, made in zip(stored, rendered, strict=True)
    ]
