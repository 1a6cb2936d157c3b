"""One middleware turns every error into the contract's JSON shape."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from image_sidecar.errors import SidecarError
from image_sidecar.log import CLIENT_CLOSED, client_went_away
from image_sidecar.tracing import route_name

log = structlog.get_logger(__name__)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(exc: SidecarError) -> web.Response:
    response = web.json_response(
        error_body(exc.code, exc.message, **exc.details()), status=exc.status, headers=exc.headers()
    )
    if exc.close_connection:
        response.force_close()
    return response


# aiohttp's own refusals (routing, its HTTP parser) under the contract's codes.
HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SidecarError as exc:
        if exc.status >= 500:
            log.warning("request_failed", error=exc.code, message=exc.message)
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_ERROR_CODES.get(exc.status, "http_error")
        return web.json_response(
            error_body(code, exc.reason), status=exc.status, headers=_allow_header(exc)
        )
    except ConnectionResetError:
        if not client_went_away(request):  # another connection's reset (S3): our failure
            return _internal_error(request)
        # The client left while its answer was written (a zip, a picture): nothing can reach
        # it, and the answer aiohttp tries to send in its place fails quietly on the closed
        # connection.
        request[CLIENT_CLOSED] = True
        return web.Response(status=499)
    except Exception:
        return _internal_error(request)


def _internal_error(request: web.Request) -> web.Response:
    # The route, not the path: a path may hold a share id, which logs never show in full.
    log.exception("unhandled_error", route=route_name(request), method=request.method)
    return web.json_response(error_body("internal_error", "internal server error"), status=500)


def _allow_header(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}
