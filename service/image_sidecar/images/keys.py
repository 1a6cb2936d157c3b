"""Where an image and its renditions are stored: the storage key layout, decided here only.

`game-{CODE}-{game_id}/round-{n}/player-{player_id}.{ext}`, the seed's three levels with the
game directory telling apart games that share a room code; renditions sit beside their original
(`player-{id}.thumb.webp`). Every part is validated by the API before it gets here. Keys issued
before game ids were in the path stay as they are: a record keeps the key it was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from image_sidecar.images.decoding import RENDITION_SIDES, PlannedRendition, Rendition
from image_sidecar.models import ImageMetadata, StoredRendition
from image_sidecar.storage.base import NewBlob


def image_key(meta: ImageMetadata, extension: str) -> str:
    """The key of a new picture of the player `meta` names, in its game and round."""
    return (
        f"game-{meta.game_code}-{meta.game_id}/round-{meta.round_number}/"
        f"player-{meta.player_id}.{extension}"
    )


def key_prefix(key: str) -> str:
    """What every file of the image under `key` starts with (its original's and renditions'):
    `game-.../round-1/player-{id}.`; the write journal names places by it."""
    return f"{key.rpartition('.')[0]}."


def image_prefix(meta: ImageMetadata) -> str:
    """`key_prefix` of a new picture of the player `meta` names, whatever its type."""
    return key_prefix(image_key(meta, "x"))


def rendition_key(image_key: str, name: str, image_format: str) -> str:
    """Beside its original: `player-{id}.png` has `player-{id}.thumb.webp`, `...large.avif`."""
    return f"{image_key.rpartition('.')[0]}.{name}.{image_format}"


def rendition_of(key: str) -> tuple[str, str] | None:
    """(name, format) when `key` is a rendition's (`....thumb.webp`), else None."""
    stem, _, image_format = key.rpartition(".")
    name = stem.rpartition(".")[2]
    if name in RENDITION_SIDES and image_format in ("webp", "avif"):
        return name, image_format
    return None


def renditions_beside(
    key: str, renditions: Iterable[StoredRendition]
) -> tuple[StoredRendition, ...]:
    """The same renditions, stored beside the image under `key` (a reuse shares their bytes)."""
    return tuple(
        replace(rendition, image_path=rendition_key(key, rendition.name, rendition.format))
        for rendition in renditions
    )


def stored_renditions(
    key: str, planned: Iterable[PlannedRendition], made: Iterable[Rendition]
) -> tuple[StoredRendition, ...]:
    """Where every planned rendition of the image under `key` is stored, with the size of
    those `made` already (the others are made when first asked for)."""
    made_now = {(r.name, r.format): r for r in made}
    return tuple(
        StoredRendition(
            name=plan.name,
            format=plan.format,
            image_path=rendition_key(key, plan.name, plan.format),
            content_type=plan.content_type,
            width=plan.width,
            height=plan.height,
            size_bytes=len(rendition.data) if rendition else None,
            sha256=rendition.sha256 if rendition else None,
        )
        for plan in planned
        for rendition in [made_now.get((plan.name, plan.format))]
    )


def rendition_blobs(
    key: str, sha256: str, stored: tuple[StoredRendition, ...], made: tuple[Rendition, ...]
) -> tuple[list[NewBlob], list[tuple[str, str, int]]]:
    """The renditions `made` of the original under `key`, as the bytes to write where
    `stored_renditions` put them, and as (source key, target key, size) links of the original
    for those that are its own bytes (`sha256`: a web-ready original's large): a hard link on
    disk, a server-side copy on S3, never the bytes written twice. The links are made once the
    original is published."""
    where = {(r.name, r.format): r.image_path for r in stored}
    blobs, links = [], []
    for rendition in made:
        target = where[rendition.name, rendition.format]
        if rendition.sha256 == sha256:
            links.append((key, target, len(rendition.data)))
        else:
            blobs.append(NewBlob(target, rendition.data, rendition.content_type, rendition.sha256))
    return blobs, links


def made_links(
    shared: tuple[StoredRendition, ...], own: tuple[StoredRendition, ...]
) -> list[tuple[str, str, int]]:
    """(source key, target key, size) for each of another image's renditions that is made:
    this image's renditions share their bytes. One not made yet is made for this image when
    first asked for."""
    return [
        (source.image_path, target.image_path, source.size_bytes)
        for source, target in zip(shared, own, strict=True)
        if source.size_bytes is not None
    ]
