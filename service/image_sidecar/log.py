"""structlog set-up: JSON lines for machines, readable lines on a terminal; one line per request."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from image_sidecar.appkeys import metrics_key
from image_sidecar.tracing import add_trace_ids, route_name

log = structlog.get_logger("image_sidecar.http")
_json_lines = True  # as configured last: the picture processes log the same way


def logs_json_lines() -> bool:
    return _json_lines


def configure_logging(*, json_lines: bool | None = None, level: int = logging.INFO) -> None:
    """structlog for our code, and the same renderer for libraries that log through the standard
    library (aiohttp's server errors, asyncio) and for warnings, so every line on stderr has one
    format."""
    global _json_lines
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    _json_lines = json_lines
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    exceptions = structlog.processors.format_exc_info if json_lines else structlog.dev.set_exc_info
    structlog.configure(
        processors=[*shared, exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write per line (PrintLogger writes the newline apart): several workers share
        # stderr, and their lines must not run together.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                exceptions,
                renderer,
            ],
        )
    )
    logging.basicConfig(handlers=[handler], level=level, force=True)
    logging.captureWarnings(True)  # a library's warning is a line like any other
    # pgserver narrates every start and stop of the embedded PostgreSQL in a dozen multi-line
    # records; `dev` logs one line of its own instead.
    logging.getLogger("pgserver").setLevel(max(level, logging.WARNING))


STATIC_ROUTE = "/generated-images/{key}"
REQUEST_ID = web.RequestKey("request_id", str)  # the id the request log gave the request
# Set when the client went away while its answer was being written (`client_went_away`).
CLIENT_CLOSED = web.RequestKey("client_closed", bool)


def client_went_away(request: web.BaseRequest) -> bool:
    """Whether the client's connection is gone (closed, or closing after a reset)."""
    return request.transport is None or request.transport.is_closing()


async def tag_response(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Every answer carries its request's X-Request-ID, also one a handler sends itself (an
    image's bytes): aiohttp calls this as the headers go out (`on_response_prepare`)."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers.setdefault("X-Request-ID", request_id)


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tag the request with an id (the caller's X-Request-ID or a new one) and log its outcome.
    A client that goes away before or during its answer (aiohttp cancels the handler, or a
    write finds the connection gone: `CLIENT_CLOSED`) is not the server's failure: logged at
    info as `client_closed` and counted apart from the responses."""
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    if len(request_id) > 128 or not request_id.isprintable():
        request_id = uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status: int | None = 500
    try:
        response = await handler(request)
        status = None if request.get(CLIENT_CLOSED) else response.status
        return response
    except web.HTTPException as exc:  # redirects; errors are JSON responses by now
        status = exc.status
        raise
    except asyncio.CancelledError:
        if client_went_away(request):
            status = None
        raise
    finally:
        seconds = time.perf_counter() - started
        route = route_name(request)
        metrics = request.app[metrics_key]
        if status is None:
            metrics.client_closed.labels(route, request.method).inc()
            log.info(
                "request",
                method=request.method,
                route=route,
                outcome="client_closed",
                duration_seconds=round(seconds, 6),
            )
        else:
            metrics.http_duration.labels(route, request.method, str(status)).observe(seconds)
        # Image bytes served well are counted (the metric above), not logged: a judge screen
        # is a dozen GETs per player, and a log line each cost a tenth of the static path.
        if status is not None and (status >= 400 or route != STATIC_ROUTE):
            log.info(
                "request",
                method=request.method,
                route=route,
                status=status,
                duration_seconds=round(seconds, 6),
            )
        structlog.contextvars.unbind_contextvars("request_id")
