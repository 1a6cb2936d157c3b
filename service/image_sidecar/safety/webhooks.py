"""Telling a CDN what to purge: a JSON POST, retried a bounded number of times, logged."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import structlog

from image_sidecar.tracing import outgoing_headers, span

log = structlog.get_logger(__name__)

ATTEMPTS = 3
TIMEOUT_SECONDS = 5.0
BACKOFF_SECONDS = 0.5  # doubled after each failed attempt: at most 3 tries within ~17 s


async def post_json(url: str, payload: dict[str, Any], *, event: str) -> bool:
    """POST `payload` to `url` until a 2xx answer or ATTEMPTS failures; True when delivered.
    Never raises: the caller's own work is done, and the log says what was not delivered."""
    with span("webhook.post", **{"webhook.event": event}):
        return await _post(url, payload, event=event)


async def _post(url: str, payload: dict[str, Any], *, event: str) -> bool:
    delay = BACKOFF_SECONDS
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with session.post(url, json=payload, headers=outgoing_headers()) as response:
                    if 200 <= response.status < 300:
                        log.info("webhook_delivered", event_type=event, attempt=attempt)
                        return True
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = str(exc) or type(exc).__name__
            log.warning("webhook_failed", event_type=event, attempt=attempt, error=problem)
            if attempt < ATTEMPTS:
                await asyncio.sleep(delay)
                delay *= 2
    log.error("webhook_given_up", event_type=event, attempts=ATTEMPTS)
    return False
