"""Guards every route shares, before any handler reads its input."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler

from image_sidecar.errors import BadRequest

# NUL and the other C0 controls, and DEL: no identifier, key, code or token holds one, and a NUL
# reaching PostgreSQL's text or a file name is an error of the driver or the OS, not of the
# request.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@web.middleware
async def control_character_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """400 `bad_request` naming the parameter when a path or query parameter holds a control
    character: decided before the database or the store is touched, on every route."""
    for name, value in request.match_info.items():
        if _CONTROL.search(value):
            raise BadRequest(f"{name}: control characters are not allowed", field=name)
    for name, value in request.query.items():
        if _CONTROL.search(name) or _CONTROL.search(value):
            field = name if not _CONTROL.search(name) else "query"
            raise BadRequest(f"{field}: control characters are not allowed", field=field)
    return await handler(request)
