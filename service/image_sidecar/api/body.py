"""Reading request bodies: within the body timeout, as a JSON object or (multipart.py) a form."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError
from aiohttp.web_protocol import RequestPayloadError

from image_sidecar.appkeys import config_key
from image_sidecar.errors import BadRequest, RequestTimeout, UndecodableBody


@asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Bound the time a client may take to send its body: a client trickling bytes would
    otherwise hold a connection and a buffer for ever. 408 when it runs out; 400 when the body
    cannot be decoded as its Content-Encoding says (garbage gzip or deflate)."""
    seconds = request.app[config_key].server.body_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise RequestTimeout(f"the request body was not received within {seconds:g} s") from None
    except (RequestPayloadError, ContentEncodingError):
        # Nothing more of it is read: aiohttp would drain the rest after the answer, meet the
        # same error and log it as unhandled. The answer closes the connection instead.
        request.content.feed_eof()
        encoding = request.headers.get("Content-Encoding", "its Content-Encoding")
        raise UndecodableBody(f"the body could not be decoded as {encoding}") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body; 400 for anything else."""
    async with body_deadline(request):
        raw = await request.read()
    try:
        body = json.loads(raw)  # at most 1 MiB (aiohttp's client_max_size): a few milliseconds
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
