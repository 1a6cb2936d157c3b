"""Recognise the image formats the sidecar accepts from their first bytes, never from names."""

from __future__ import annotations

from dataclasses import dataclass

from image_sidecar.errors import NotAnImage


@dataclass(frozen=True)
class ImageType:
    content_type: str
    extension: str


JPEG = ImageType("image/jpeg", "jpg")
PNG = ImageType("image/png", "png")
WEBP = ImageType("image/webp", "webp")

# Never accepted as an upload; made by the sidecar as a rendition, and served.
AVIF = ImageType("image/avif", "avif")

# What the static route serves, by the extension of the key.
BY_EXTENSION = {t.extension: t for t in (JPEG, PNG, WEBP, AVIF)}
BY_CONTENT_TYPE = {t.content_type: t for t in (JPEG, PNG, WEBP)}


def of_key(key: str) -> ImageType | None:
    """The type a storage key's extension names (None for any other key)."""
    return BY_EXTENSION.get(key.rpartition(".")[2])


def sniff(data: bytes) -> ImageType:
    """The type of `data`, or NotAnImage: a client's Content-Type header is not trusted."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    raise NotAnImage("image must be a JPEG, PNG or WebP file")
