"""The moderation hook (IMAGE_MODERATION_URL): a studio's own classifier says yes or no to every
upload before anything is written (docs/moderation.md has the contract and an example hook).

The upload's bytes (part `image`) and its text fields go out as `multipart/form-data` while the
upload is decoded; the call holds no database connection (the upload's transaction opens after
it) and waits on the event loop without blocking it. 2xx accepts; 4xx refuses (422
`rejected_by_moderation`, the hook's JSON `reason` passed on); anything else (5xx, a redirect,
no connection, no answer within IMAGE_MODERATION_TIMEOUT_SECONDS) is a failure, and
IMAGE_MODERATION_FAILURE says what it means: `closed` refuses the upload for now (503
`moderation_unavailable`, Retry-After), `open` accepts it. Every outcome is logged and counted
with the hook's latency.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Literal

import aiohttp
import structlog
from aiohttp import web

from image_sidecar.appkeys import config_key, metrics_key, moderation_hook_key
from image_sidecar.errors import ModerationUnavailable, RejectedByModeration
from image_sidecar.tracing import outgoing_headers, span

log = structlog.get_logger(__name__)

Outcome = Literal["accepted", "rejected", "failed_open", "failed_closed"]
_REASON_CHARACTERS = 500
_BODY_BYTES = 65_536  # of a refusal's body read for its reason
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class ModerationHook:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        timeout_seconds: float,
        fail_open: bool,
        record: Callable[[Outcome, float], None] = lambda outcome, seconds: None,
    ) -> None:
        self._session = session
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.fail_open = fail_open
        self._record = record

    async def review(self, data: bytes, content_type: str, fields: Mapping[str, str]) -> None:
        """Returns when the picture may be stored; RejectedByModeration or
        ModerationUnavailable when it may not."""
        with span("moderation.review", **{"http.request.method": "POST"}) as current:
            try:
                await self._review(data, content_type, fields)
            except RejectedByModeration:
                current.set_attribute("moderation.outcome", "rejected")
                raise

    async def _review(self, data: bytes, content_type: str, fields: Mapping[str, str]) -> None:
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("image", data, filename="image", content_type=content_type)
        started = time.monotonic()
        try:
            async with self._session.post(
                self.url,
                data=form,
                timeout=self.timeout,
                allow_redirects=False,
                headers=outgoing_headers(),
            ) as response:
                if 200 <= response.status < 300:
                    self._decided("accepted", started)
                    return
                if 400 <= response.status < 500:
                    reason = await _reason(response)
                    self._decided("rejected", started, status=response.status, reason=reason)
                    raise RejectedByModeration(reason)
                problem = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.fail_open:
            self._decided("failed_open", started, error=problem)
            return
        self._decided("failed_closed", started, error=problem)
        raise ModerationUnavailable(
            "the moderation hook did not answer: the picture cannot be checked, retry shortly"
        )

    def _decided(self, outcome: Outcome, started: float, **facts: object) -> None:
        seconds = time.monotonic() - started
        self._record(outcome, seconds)
        level = log.warning if outcome.startswith("failed") else log.info
        level("moderation", outcome=outcome, seconds=round(seconds, 3), **facts)


async def _reason(response: aiohttp.ClientResponse) -> str | None:
    """The hook's JSON `reason`, one line of at most 500 characters; None without one."""
    try:
        body = json.loads(await response.content.read(_BODY_BYTES))
    except (ValueError, aiohttp.ClientError):  # not JSON (or cut off at _BODY_BYTES)
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str):
        return None
    return _CONTROL.sub(" ", reason).strip()[:_REASON_CHARACTERS] or None


async def moderation_context(app: web.Application) -> AsyncIterator[None]:
    """The hook's HTTP client, for the application's lifetime; no hook when no URL is set."""
    settings = app[config_key].moderation
    if settings.url is None:
        app[moderation_hook_key] = None
        yield
        return
    metrics = app[metrics_key]
    async with aiohttp.ClientSession() as session:
        app[moderation_hook_key] = ModerationHook(
            session,
            settings.url,
            timeout_seconds=settings.timeout_seconds,
            fail_open=settings.failure == "open",
            record=metrics.moderation_decided,
        )
        log.info("moderation_hook", url=settings.url, failure=settings.failure)
        yield
