"""Bearer-token check for every write endpoint."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from image_sidecar.appkeys import config_key
from image_sidecar.errors import Unauthorized

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[config_key].server.api_token
    if token is not None and request.method not in _READ_METHODS:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("this endpoint needs Authorization: Bearer <token>")
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise Unauthorized("the bearer token is not valid")
    return await handler(request)
