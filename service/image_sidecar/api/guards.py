"""Guards every route shares, before any handler reads its input."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from aiohttp.typedefs import Handler

from image_sidecar.errors import BadRequest, UnsupportedEncoding

# NUL and the other C0 controls, and DEL: no identifier, key, code or token holds one, and a NUL
# reaching PostgreSQL's text or a file name is an error of the driver or the OS, not of the
# request.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The Content-Encodings of a request body that aiohttp's parser decodes here.
DECODED_ENCODINGS = frozenset(
    {"identity", "gzip", "x-gzip", "deflate"}
    | ({"br"} if HAS_BROTLI else set())
    | ({"zstd"} if HAS_ZSTD else set())
)


@web.middleware
async def request_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals every route shares, decided before the database or the store is touched: 400
    `bad_request` naming the parameter when a path or query parameter holds a control
    character; 415 `unsupported_encoding` for a body in a Content-Encoding the server does not
    decode (a known one that does not decode is the body reader's 400)."""
    for name, value in request.match_info.items():
        if _CONTROL.search(value):
            raise BadRequest(f"{name}: control characters are not allowed", field=name)
    for name, value in request.query.items():
        if _CONTROL.search(name) or _CONTROL.search(value):
            field = name if not _CONTROL.search(name) else "query"
            raise BadRequest(f"{field}: control characters are not allowed", field=field)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if request.body_exists and encoding not in DECODED_ENCODINGS:
        raise UnsupportedEncoding(
            f"the body's Content-Encoding {encoding!r} is not one the sidecar decodes "
            f"({', '.join(sorted(DECODED_ENCODINGS))})"
        )
    return await handler(request)
