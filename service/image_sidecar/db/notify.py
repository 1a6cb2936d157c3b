"""LISTEN/NOTIFY: wake the requests of this process that wait for a key announced by any replica."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiopg
import structlog
from aiohttp import web

from image_sidecar.db.cache import CACHE_CHANNEL
from image_sidecar.tasks import cancel_and_wait
from image_sidecar.typedefs import config_key, notification_hub_key

log = structlog.get_logger(__name__)

_RECONNECT_SECONDS = 1.0


class NotificationHub:
    """One listening connection per process, fanning notifications out to waiting requests.

    A waiter must still re-check the database when woken or when its own timeout passes: a
    notification sent while the connection was being re-established is lost, so every
    (re)connect wakes every waiter.
    """

    def __init__(self, database_url: str, channel: str) -> None:
        if not channel.isidentifier():
            raise ValueError(f"channel must be a plain identifier, not {channel!r}")
        self._database_url = database_url
        self._channel = channel
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name=f"listen-{self._channel}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    def release_waiters(self) -> None:
        """The process is shutting down: wake every waiter, which answers instead of waiting."""
        self.closing = True
        self._wake_all()

    @contextmanager
    def subscribe(self, key: str) -> Iterator[asyncio.Event]:
        """An event set whenever `key` is announced (or the listener reconnects)."""
        event = asyncio.Event()
        self._waiters[key].add(event)
        try:
            yield event
        finally:
            self._waiters[key].discard(event)
            if not self._waiters[key]:
                del self._waiters[key]

    def _wake(self, key: str) -> None:
        for event in self._waiters.get(key, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with (
                    aiopg.connect(self._database_url, enable_hstore=False) as conn,
                    conn.cursor() as cur,
                ):
                    await cur.execute(f"LISTEN {self._channel}")
                    self._wake_all()
                    while True:
                        notification = await conn.notifies.get()
                        self._wake(notification.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listen_connection_lost", channel=self._channel, error=str(exc))
                await asyncio.sleep(_RECONNECT_SECONDS)


async def release_waiters_on_shutdown(app: web.Application) -> None:
    """on_shutdown: long-polls answer at once rather than hold the shutdown for up to 30 s."""
    app[notification_hub_key].release_waiters()


async def notifications_context(app: web.Application) -> AsyncIterator[None]:
    """Listen for finished uploads (of any replica) on the prompt cache's channel."""
    database_url = app[config_key].database.url
    assert database_url is not None  # pool_context, which runs first, has checked it
    hub = NotificationHub(database_url, CACHE_CHANNEL)
    hub.start()
    app[notification_hub_key] = hub
    yield
    await hub.stop()
