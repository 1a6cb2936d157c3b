"""GET/HEAD of image bytes: the player's browser (or a CDN) fetches these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from image_sidecar.imagetypes import BY_EXTENSION
from image_sidecar.storage.base import BlobNotFound, RemoteBlob
from image_sidecar.typedefs import blob_store_key

# A stored path keeps its bytes until it expires (30 days by default) or is purged; a week of
# caching spares the sidecar while a purge still reaches browsers within days.
CACHE_CONTROL = "public, max-age=604800, immutable"
# A redirect to a presigned object URL may be reused only while that URL is valid.
REDIRECT_CACHE_CONTROL = "private, max-age=300"


class DigestFileResponse(web.FileResponse):
    """A FileResponse whose ETag is the content's SHA-256, the same on every replica.

    aiohttp's own tag is mtime-size, which differs between replicas and after a restore.
    """

    def __init__(self, path: Path, sha256: str, headers: dict[str, str]) -> None:
        super().__init__(path, headers={**headers, hdrs.ETAG: f'"{sha256}"'})

    @property
    def etag(self) -> Any:
        return web.StreamResponse.etag.fget(self)  # type: ignore[attr-defined]

    @etag.setter
    def etag(self, value: Any) -> None:
        """Ignore FileResponse's mtime-size tag; the digest set in __init__ stays."""


async def serve_image(request: web.Request) -> web.StreamResponse:
    key = request.match_info["key"]
    image_type = BY_EXTENSION.get(key.rpartition(".")[2])
    if image_type is None:
        raise BlobNotFound(f"no such image: {key}")
    blob = await request.app[blob_store_key].servable(key)
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
    if_none_match = request.if_none_match
    if if_none_match and any(tag.value in (blob.sha256, "*") for tag in if_none_match):
        return web.Response(status=304, headers={**headers, hdrs.ETAG: f'"{blob.sha256}"'})
    return DigestFileResponse(blob.path, blob.sha256, headers)
