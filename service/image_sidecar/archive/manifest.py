"""The archive's format and its checks.

A zip (ZIP64, stored: pictures are compressed already) holding `manifest.json` first, then one
member per distinct content, `images/{sha256}.{ext}` (reuses share their bytes, so a game's
reused picture is in it once). The manifest:

    {"format": "image-sidecar-archive", "version": 1, "exported_at": ..., "selection": {...},
     "games": [...], "game_rounds": [...], "generated_images": [...],
     "image_renditions": [...], "round_winners": [...]}

Each list holds rows of the table of its name, as JSON objects of their columns (every field of
a record, its id, sentence, player name, expiry...). Renditions are listed without sizes: the
import's deployment makes them again on first request.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from image_sidecar.images.formats import of_key
from image_sidecar.storage.base import InvalidKey, check_key

FORMAT = "image-sidecar-archive"
VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 256 * 2**20
TABLES = ("games", "game_rounds", "generated_images", "image_renditions", "round_winners")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ArchiveInvalid(Exception):
    """The archive is damaged, tampered with or not an archive: nothing was written."""


def member_name(sha256: str, image_path: str) -> str:
    return f"images/{sha256}.{image_path.rpartition('.')[2]}"


@dataclass(frozen=True)
class Content:
    """One distinct content of an archive: its member, size and digest, and the images that
    hold it."""

    member: str
    size_bytes: int
    sha256: str
    image_paths: tuple[str, ...]


def check(manifest: Any) -> list[Content]:
    """The manifest's contents, once it is found whole and consistent; ArchiveInvalid naming
    what is wrong otherwise."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveInvalid(f"{MANIFEST} is not an image-sidecar archive's manifest")
    if manifest.get("version") != VERSION:
        raise ArchiveInvalid(
            f"archive version {manifest.get('version')!r}: this one reads {VERSION}"
        )
    for table in TABLES:
        rows = manifest.get(table)
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ArchiveInvalid(f"{MANIFEST}: `{table}` is not a list of rows")
    contents: dict[str, Content] = {}
    ids: set[str] = set()
    for row in manifest["generated_images"]:
        image_id, sha256, key, size = (
            row.get("image_id"),
            row.get("sha256"),
            row.get("image_path"),
            row.get("size_bytes"),
        )
        where = f"{MANIFEST}: image {image_id!r}"
        if not isinstance(image_id, str) or not _is_uuid(image_id) or image_id in ids:
            raise ArchiveInvalid(f"{where}: no image_id, or a repeated one")
        ids.add(image_id)
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise ArchiveInvalid(f"{where}: sha256 is not 64 hexadecimal digits")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ArchiveInvalid(f"{where}: size_bytes is not a positive number")
        if not isinstance(key, str) or not _is_key(key):
            raise ArchiveInvalid(f"{where}: image_path is not a storage key of a picture")
        if not _is_instant(row.get("expires_at")):
            raise ArchiveInvalid(f"{where}: expires_at is not an instant with its offset")
        held = contents.get(sha256)
        if held is not None and held.size_bytes != size:
            raise ArchiveInvalid(f"{where}: two sizes for the content {sha256}")
        contents[sha256] = Content(
            member_name(sha256, key) if held is None else held.member,
            size,
            sha256,
            (*held.image_paths, key) if held is not None else (key,),
        )
    for table in ("image_renditions", "round_winners"):
        for row in manifest[table]:
            if row.get("image_id") not in ids:
                raise ArchiveInvalid(f"{MANIFEST}: a row of `{table}` names no archived image")
    return list(contents.values())


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_instant(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _is_key(key: str) -> bool:
    try:
        check_key(key)
    except InvalidKey:
        return False
    return of_key(key) is not None
