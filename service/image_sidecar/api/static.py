"""GET/HEAD of image bytes: the player's browser (or a CDN) fetches these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import ETag
from multidict import CIMultiDict

from image_sidecar.appkeys import blob_store_key, db_pool_key, metrics_key, rendition_maker_key
from image_sidecar.errors import PreconditionFailed, RangeNotSatisfiable
from image_sidecar.images.formats import of_key
from image_sidecar.images.keys import rendition_of
from image_sidecar.lifecycle import scrub
from image_sidecar.storage.base import BlobNotFound, RemoteBlob

# A stored path keeps its bytes until it expires (30 days by default) or is purged; a week of
# caching spares the sidecar while a purge still reaches browsers within days.
CACHE_CONTROL = "public, max-age=604800, immutable"
# A redirect to a presigned object URL may be reused only while that URL is valid.
REDIRECT_CACHE_CONTROL = "private, max-age=300"


class DigestFileResponse(web.FileResponse):
    """A FileResponse whose ETag is the content's SHA-256, the same on every replica.

    aiohttp's own tag is mtime-size, which differs between replicas and after a restore; the
    conditional headers that name a tag are therefore decided by `serve_image`, not by aiohttp.
    """

    def __init__(self, path: Path, sha256: str, headers: dict[str, str]) -> None:
        super().__init__(path, headers={**headers, hdrs.ETAG: f'"{sha256}"'})

    @property
    def etag(self) -> Any:
        return web.StreamResponse.etag.fget(self)  # type: ignore[attr-defined]

    @etag.setter
    def etag(self, value: Any) -> None:
        """Ignore FileResponse's mtime-size tag; the digest set in __init__ stays."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Sent once: `serve_image` sends it itself, so the request log sees the final status
        (206, 416...), and aiohttp's second call finds it sent."""
        if self.prepared:
            return None
        return await super().prepare(request)


def _matches(etags: tuple[ETag, ...], sha256: str, *, weak: bool) -> bool:
    """RFC 9110 comparison of a client's tags with ours (strong unless `weak`)."""
    return any(
        tag.value == "*" or (tag.value == sha256 and (weak or not tag.is_weak)) for tag in etags
    )


def _without_tag_conditions(request: web.Request, sha256: str) -> web.Request | web.Response:
    """Decide If-Match, If-None-Match and an ETag If-Range against the digest; answer 304
    here (or raise 412), or give FileResponse a request left only with what it decides correctly (a
    single Range, date conditions)."""
    headers = CIMultiDict(request.headers)
    if (if_match := request.if_match) is not None:
        if not _matches(if_match, sha256, weak=False):
            raise PreconditionFailed(f"If-Match does not name this image's ETag {sha256}")
        del headers[hdrs.IF_MATCH]
        headers.popall(hdrs.IF_UNMODIFIED_SINCE, None)  # If-Match decides alone
    if (if_none_match := request.if_none_match) is not None:
        if _matches(if_none_match, sha256, weak=True):
            return web.Response(status=304)
        del headers[hdrs.IF_NONE_MATCH]
        headers.popall(hdrs.IF_MODIFIED_SINCE, None)  # If-None-Match decides alone
    if "," in headers.get(hdrs.RANGE, ""):
        # Several ranges: the whole picture with 200, as RFC 9110 lets a server answer (a
        # multipart/byteranges body is more than any browser or CDN asks of a picture).
        headers.popall(hdrs.RANGE)
    if_range = request.headers.get(hdrs.IF_RANGE, "").strip()
    if if_range.startswith(('"', "W/")):
        # An entity-tag If-Range: the Range applies only if the tag is exactly ours (strong).
        del headers[hdrs.IF_RANGE]
        if if_range != f'"{sha256}"':
            headers.popall(hdrs.RANGE, None)
    return request.clone(headers=headers)


def _unsatisfiable(request: web.Request, size: int) -> bool:
    """Whether FileResponse would answer 416 to this Range (its own rules, RFC 9110): then the
    answer is the contract's JSON error instead of its empty body with the image's headers."""
    if request.if_range is not None or hdrs.RANGE not in request.headers:
        return False  # a date If-Range: FileResponse decides whether the Range applies
    try:
        start = request.http_range.start
    except ValueError:
        return True
    if start is not None and start < 0 and request.http_range.stop is None:
        start = max(0, start + size)  # a suffix range: the last bytes
    return start is not None and start >= size


async def serve_image(request: web.Request) -> web.StreamResponse:
    key = request.match_info["key"]
    image_type = of_key(key)
    if image_type is None or scrub.is_quarantined(key):
        raise BlobNotFound(f"no such image: {key}")
    store = request.app[blob_store_key]
    try:
        blob = await store.servable(key)
    except BlobNotFound:
        if rendition_of(key) is None:
            await scrub.refuse_if_out_of_service(request.app[db_pool_key], key)
            raise
        if await request.app[rendition_maker_key].ensure(key):  # made on first request
            request.app[metrics_key].renditions_made.labels(*rendition_of(key) or ()).inc()
        blob = await store.servable(key)
    if isinstance(blob, RemoteBlob):
        # The object store serves the bytes (with its own ETag and Range support).
        raise web.HTTPTemporaryRedirect(
            blob.url, headers={hdrs.CACHE_CONTROL: REDIRECT_CACHE_CONTROL}
        )
    headers = {
        hdrs.CACHE_CONTROL: CACHE_CONTROL,
        hdrs.CONTENT_TYPE: image_type.content_type,
        "X-Content-Type-Options": "nosniff",
    }
    decided = _without_tag_conditions(request, blob.sha256)
    if isinstance(decided, web.Response):
        decided.headers.update({**headers, hdrs.ETAG: f'"{blob.sha256}"'})
        return decided
    if _unsatisfiable(decided, blob.size_bytes):
        raise RangeNotSatisfiable(
            f"the Range asks for bytes past the image's {blob.size_bytes}", size=blob.size_bytes
        )
    response = DigestFileResponse(blob.path, blob.sha256, headers)
    await response.prepare(decided)
    return response
