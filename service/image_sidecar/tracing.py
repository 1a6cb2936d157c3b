"""OpenTelemetry traces: where one request spent its time, from the game server to the disk.

Off unless the standard variables name an endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): then each process (each worker, after its fork: the
exporter's thread does not survive one) sets up the SDK with an OTLP/HTTP exporter, a batch
processor and the sampler of `OTEL_TRACES_SAMPLER`, under `OTEL_SERVICE_NAME` (default
`image-sidecar`) with `OTEL_RESOURCE_ATTRIBUTES`, plus `service.instance.id` (host and pid) so
that workers are told apart. Off, nothing is set up: the API's tracer makes no spans and every
`span()` below costs a function call.

What makes spans: the server middleware (one per request, under the caller's W3C
`traceparent`), `db` (a span per SQL statement, `db.statement` without its parameters, and a
wait for a pooled connection longer than 1 ms), the stores (reads and writes), picture work, the
moderation hook and the purge webhook (which pass `traceparent` on), and the batch jobs (a trace
each, a span per batch). Inside a trace the sampler dropped, nothing is made.

Not aiopg's OpenTelemetry instrumentation: measured, it defines a class for every cursor and
records metrics for every statement, traced or not, which cost lookups 29% of their throughput
with nothing sampled; `db`'s cursors make the same spans (db.system, db.statement) only when
the trace is kept. No attribute holds prompt text, a player's name or a
token: statements carry placeholders, never their parameters, and spans name ids and keys only.
"""

from __future__ import annotations

import functools
import os
import random
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, TypeVar

import structlog
from aiohttp import web
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import SpanKind, Status, StatusCode

log = structlog.get_logger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

tracer = trace.get_tracer("image_sidecar")
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def enabled(environ: MutableMapping[str, str] = os.environ) -> bool:
    return any(environ.get(name) for name in _ENDPOINTS)


_started: list[Any] = []  # this process's provider, once started
_choosing: list[bool] = []  # whether the middleware chooses which requests to trace (default)


def started() -> bool:
    return bool(_started)


def start(environ: MutableMapping[str, str] = os.environ) -> Any | None:
    """Set this process's tracer provider up when an endpoint is configured; the provider (to
    shut down, which flushes), or None when tracing is off or already started."""
    if not enabled(environ) or _started:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol != "http/protobuf":
        log.warning("tracing_protocol_unsupported", protocol=protocol, using="http/protobuf")
    resource = Resource.create(
        {
            "service.name": environ.get("OTEL_SERVICE_NAME") or "image-sidecar",
            "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
        }
    )
    # The sampler: OTEL_TRACES_SAMPLER when set, else the sidecar's own default (below).
    sampler = None if environ.get("OTEL_TRACES_SAMPLER") else _default_sampler()
    provider = TracerProvider(resource=resource, sampler=sampler)
    _choosing.append(sampler is not None)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _started.append(provider)
    log.info("tracing_started", service=resource.attributes.get("service.name"))
    return provider


# Of the requests that come without a caller's trace, those traced (the rest cost a check).
DEFAULT_ROOT_RATIO = 0.1


def _default_sampler() -> Sampler:
    """Parent-based, every root kept: a request under a caller's `traceparent` follows the
    caller's decision (a game server that traces a call gets the sidecar's side of it, always),
    a batch job (the cleanup, the scrub) is always traced (one run, one trace). Requests without
    a caller's trace are chosen before the SDK is asked (`_chosen`): 1 in 10."""
    return ParentBased(root=ALWAYS_ON)


def _chosen(headers: Mapping[str, str]) -> bool:
    """With the default sampler, whether this request is traced at all: as the caller's
    `traceparent` says when it sent one (its sampled flag), else one request in
    1/DEFAULT_ROOT_RATIO. A request not chosen makes no span, not even a dropped one: each
    traced request costs the event loop its spans' making and encoding (docs/benchmarks.md),
    and a tenth is plenty to see where time goes."""
    parent = headers.get("traceparent", "")
    if len(parent) == 55 and parent[2] == "-" and parent[-3] == "-":
        try:
            return bool(int(parent[-2:], 16) & 1)
        except ValueError:
            pass
    return random.random() < DEFAULT_ROOT_RATIO


def record_span(name: str, start_ns: int, end_ns: int, **attributes: str | int) -> None:
    """A span of what already happened (a wait worth showing), under the current span."""
    if _wanted():
        tracer.start_span(name, start_time=start_ns, attributes=attributes).end(end_time=end_ns)


async def tracing_context(app: web.Application) -> AsyncIterator[None]:
    """Tracing for the application's process: started before the pool (so that its SQL is
    traced), flushed and stopped at shutdown."""
    provider = start()
    yield
    if provider is not None:
        provider.shutdown()


def route_name(request: web.Request) -> str:
    """The route's template (`/api/games/{game_code}/images`): what logs, metrics and spans
    name a request by, never its raw path's ids."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def tracing_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """One server span per request, under the caller's `traceparent`. Outermost, so that the
    request's log lines are inside it."""
    if not _started or (_choosing[0] and not _chosen(request.headers)):
        return await handler(request)
    template = route_name(request)
    with tracer.start_as_current_span(
        f"{request.method} {template}",
        context=propagate.extract(request.headers),
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": request.method,
            "http.route": template,
            "url.path": request.path,
            "url.scheme": request.scheme,
            "network.protocol.version": f"{request.version.major}.{request.version.minor}",
        },
    ) as current:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            current.set_attribute("http.response.status_code", exc.status)
            raise
        current.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            current.set_status(Status(StatusCode.ERROR))
        return response


def _wanted() -> bool:
    """Whether a child span made now would be kept: tracing is on and a kept trace is under way
    (outside one, and inside a dropped one, nothing is made at all: the cheapest nothing)."""
    return bool(_started) and trace.get_current_span().is_recording()


@contextmanager
def span(name: str, **attributes: str | int | float | bool) -> Iterator[trace.Span]:
    """A child span of the current one (nothing when tracing is off or the trace dropped)."""
    if not _wanted():
        yield trace.INVALID_SPAN
        return
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


@contextmanager
def sql_span(statement: str) -> Iterator[None]:
    """A statement's span: `db.statement` is its text, with placeholders, never parameters."""
    if not _wanted():
        yield
        return
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    with tracer.start_as_current_span(
        operation,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "postgresql",
            "db.operation.name": operation,
            "db.statement": statement,
        },
    ):
        yield


def traced(
    name: str, *, job: bool = False, attributes: Mapping[str, str] | None = None
) -> Callable[[F], F]:
    """Decorate an async function with a span of its own: a child of the current kept trace
    (a store's operation), or with `job`, a trace of its own when none is under way (a batch
    job: the cleanup, the scrub...)."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not (_wanted() or (job and _started)):
                return await function(*args, **kwargs)
            with tracer.start_as_current_span(name, attributes=attributes):
                return await function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def outgoing_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) for a call to another service, under the current span."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: `trace_id` and `span_id` on every line logged inside a span."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event
