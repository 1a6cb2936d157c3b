"""Streaming, bounded reading of the multipart upload: nothing unbounded is held in memory.

Whatever a client sends, the reader holds at most the image (IMAGE_MAX_UPLOAD_BYTES) and one
bounded value per known field: a part with an unknown or repeated name is refused as soon as its
header is read, the whole body is bounded (413), and it must arrive within the body timeout (408).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import partial

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from image_sidecar.api.body import body_deadline
from image_sidecar.errors import BadRequest, InvalidField, PayloadTooLarge, SidecarError

# Text fields are short; the longest, the prompt, is at most 4,000 characters (16 KB of UTF-8).
MAX_FIELD_BYTES = 16 * 1024
_CHUNK_BYTES = 64 * 1024
# Room for the boundaries and part headers around the values.
_FRAMING_BYTES = 64 * 1024


def max_body_bytes(max_image_bytes: int, text_fields: Collection[str]) -> int:
    """The largest body a valid upload can have: the image, every field at its longest."""
    return max_image_bytes + len(text_fields) * MAX_FIELD_BYTES + _FRAMING_BYTES


async def _read_bounded(
    part: BodyPartReader, limit: int, too_large: Callable[[], SidecarError]
) -> bytes:
    buffer = bytearray()
    while chunk := await part.read_chunk(_CHUNK_BYTES):
        buffer += chunk
        if len(buffer) > limit:
            raise too_large()
    return bytes(buffer)


async def read_upload(
    request: web.Request, max_image_bytes: int, text_fields: frozenset[str]
) -> tuple[dict[str, str], bytes]:
    """The text fields (only names in `text_fields`) and the `image` part of a
    multipart/form-data upload."""
    if request.content_type != "multipart/form-data":
        raise BadRequest("send multipart/form-data with an `image` part and the metadata fields")
    max_body = max_body_bytes(max_image_bytes, text_fields)
    if request.content_length is not None and request.content_length > max_body:
        raise PayloadTooLarge(f"image must be at most {max_image_bytes} bytes")
    try:
        async with body_deadline(request):
            return await _read_parts(request, max_image_bytes, max_body, text_fields)
    except (ValueError, HttpProcessingError) as exc:
        # aiohttp's parser: no or a wrong boundary, a truncated body, a bad part header. Its
        # message goes on to quote the bytes; the head says what is wrong.
        reason = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
        reason = reason.split(":", 1)[0].strip()
        raise BadRequest(f"the body is not valid multipart/form-data ({reason})") from None


async def _read_parts(
    request: web.Request, max_image_bytes: int, max_body: int, text_fields: frozenset[str]
) -> tuple[dict[str, str], bytes]:
    fields: dict[str, str] = {}
    image: bytes | None = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if request.content.total_bytes > max_body:  # a preamble of junk before the part
            raise PayloadTooLarge(f"the body must be at most {max_body} bytes")
        if not isinstance(part, BodyPartReader) or not part.name:
            raise BadRequest("every multipart part needs a name (Content-Disposition: form-data)")
        name = part.name
        if name != "image" and name not in text_fields:
            raise InvalidField(name, "is not a field of an upload")
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
