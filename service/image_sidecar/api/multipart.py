"""Streaming, bounded reading of the multipart upload: nothing unbounded is held in memory."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from image_sidecar.errors import BadRequest, InvalidField, PayloadTooLarge, SidecarError

# Text fields are short; the longest, the prompt, is at most 4,000 characters (16 KB of UTF-8).
MAX_FIELD_BYTES = 16 * 1024
_CHUNK_BYTES = 64 * 1024


async def _read_bounded(
    part: BodyPartReader, limit: int, too_large: Callable[[], SidecarError]
) -> bytes:
    buffer = bytearray()
    while chunk := await part.read_chunk(_CHUNK_BYTES):
        buffer += chunk
        if len(buffer) > limit:
            raise too_large()
    return bytes(buffer)


async def read_upload(request: web.Request, max_image_bytes: int) -> tuple[dict[str, str], bytes]:
    """The text fields and the `image` part of a multipart/form-data upload."""
    if request.content_type != "multipart/form-data":
        raise BadRequest("send multipart/form-data with an `image` part and the metadata fields")
    if request.content_length is not None and request.content_length > (
        max_image_bytes + 64 * MAX_FIELD_BYTES
    ):
        raise PayloadTooLarge(f"image must be at most {max_image_bytes} bytes")
    try:
        return await _read_parts(request, max_image_bytes)
    except (ValueError, HttpProcessingError) as exc:
        # aiohttp's parser: no or a wrong boundary, a truncated body, a bad part header.
        reason = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
        raise BadRequest(f"the body is not valid multipart/form-data ({reason})") from None


async def _read_parts(request: web.Request, max_image_bytes: int) -> tuple[dict[str, str], bytes]:
    fields: dict[str, str] = {}
    image: bytes | None = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            raise BadRequest("every multipart part needs a name (Content-Disposition: form-data)")
        name = part.name
        if name in fields or (name == "image" and image is not None):
            raise InvalidField(name, "is given more than once")
        if name == "image":
            image = await _read_bounded(
                part,
                max_image_bytes,
                lambda: PayloadTooLarge(f"image must be at most {max_image_bytes} bytes"),
            )
            continue
        raw = await _read_bounded(part, MAX_FIELD_BYTES, partial(InvalidField, name, "is too long"))
        try:
            fields[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidField(name, "must be UTF-8 text") from None
    if not image:
        raise InvalidField("image", "is required (the image bytes as a file part)")
    return fields, image
