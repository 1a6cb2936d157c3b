"""Run the application: listen, answer every error as JSON, stop within a bounded time.

`web.run_app` would do most of this, but it cannot change how aiohttp answers a request its HTTP
parser refuses (plain text), and its shutdown waits 60 s for requests in flight. Here:

- the connection handler renders the parser's refusals (a request line or header over the
  limits, bytes that are not allowed in a path) with the contract's JSON error shape;
- on SIGTERM or SIGINT the listening sockets close, `on_shutdown` answers the waiting lookups,
  and requests still running get `shutdown_seconds` before they are cancelled.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from functools import partial
from typing import Any

import structlog
from aiohttp import web

from image_sidecar.api.errors import HTTP_ERROR_CODES, error_body
from image_sidecar.config import ServerSettings

log = structlog.get_logger(__name__)

# aiohttp's defaults (8,190 bytes per request line or header, 32,768 in all) stay: they bound
# the memory a connection can hold before the application sees the request.
_HANDLER_ARGS: dict[str, Any] = {"access_log": None}


class JsonErrorRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, answering the parser's refusals as JSON."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as the base class: too late for an answer
            raise ConnectionError("the response has begun; the connection is dropped")
        if status >= 500:
            self.log_exception("Error handling request", exc_info=exc)
            body = error_body("internal_error", "internal server error")
        else:
            # The parser's message goes on to quote the offending bytes; its head says what
            # is wrong ("Invalid char in url path", "Got more than 8190 bytes when reading").
            # One line, not a traceback: anyone can send these, as often as they like.
            reason = (message or "").split(":", 1)[0].strip() or "malformed request"
            log.info("bad_http_request", status=status, reason=reason, remote=request.remote)
            body = error_body(
                HTTP_ERROR_CODES.get(status, "bad_request"), f"not a valid HTTP request: {reason}"
            )
        response = web.json_response(body, status=status)
        response.force_close()
        return response


class SidecarRunner(web.AppRunner):
    """An AppRunner whose connections are handled by JsonErrorRequestHandler."""

    def __init__(self, app: web.Application, *, shutdown_seconds: float) -> None:
        super().__init__(app, shutdown_timeout=shutdown_seconds, **_HANDLER_ARGS)

    @property
    def server(self) -> Any:
        manager = super().server
        if manager is None:
            return None
        handler: Callable[[], web.RequestHandler] = partial(
            JsonErrorRequestHandler, manager, loop=asyncio.get_running_loop(), **_HANDLER_ARGS
        )
        return handler


async def serve_until_stopped(app: web.Application, settings: ServerSettings) -> None:
    """Serve `app` on host:port until SIGTERM or SIGINT, then shut down within the bound."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = SidecarRunner(app, shutdown_seconds=settings.shutdown_seconds)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info("serving", url=f"http://{settings.host}:{settings.port}")
        await stop.wait()
        log.info("shutting_down", grace_seconds=settings.shutdown_seconds)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
    log.info("stopped")
