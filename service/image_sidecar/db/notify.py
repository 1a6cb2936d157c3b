"""LISTEN/NOTIFY: wake the requests of this process that wait for a key announced by any replica."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiopg
import structlog
from aiohttp import web

from image_sidecar.appkeys import config_key, notification_hub_key
from image_sidecar.db.cache import CACHE_CHANNEL
from image_sidecar.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

_RECONNECT_SECONDS = 1.0
# How often a waiter looks again by itself: seldom while notifications are known to arrive, often
# while they are not (PgBouncer in transaction mode drops them; a connection being re-made).
RECHECK_SECONDS = 2.0
POLL_SECONDS = 0.25
_PING_SECONDS = 1.0


class NotificationHub:
    """One listening connection per process, fanning notifications out to waiting requests.

    A waiter must still re-check the database when woken or when its own timeout passes: a
    notification sent while the connection was being re-established is lost, so every
    (re)connect wakes every waiter. At each connect the hub notifies itself from a second
    connection; until that ping arrives, waiters poll (`recheck_seconds`), so a LISTEN that
    cannot work (PgBouncer in transaction mode) costs latency, never a stuck wait.
    """

    def __init__(self, database_url: str, channel: str) -> None:
        if not channel.isidentifier():
            raise ValueError(f"channel must be a plain identifier, not {channel!r}")
        self._database_url = database_url
        self._channel = channel
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ping = f"ping-{uuid.uuid4().hex}"
        self.delivering = False
        self.closing = False

    @property
    def recheck_seconds(self) -> float:
        return RECHECK_SECONDS if self.delivering else POLL_SECONDS

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

    def waiting(self, key: str) -> int:
        """How many lookups in this process wait for `key` to be announced."""
        return len(self._waiters.get(key, ()))

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
                    await self._check_delivery(conn)
                    while True:
                        notification = await conn.notifies.get()
                        self._wake(notification.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.delivering = False
                log.warning("listen_connection_lost", channel=self._channel, error=str(exc))
                await asyncio.sleep(_RECONNECT_SECONDS)

    async def _check_delivery(self, conn: aiopg.Connection) -> None:
        """Notify ourselves from another connection and see whether it arrives."""
        async with (
            aiopg.connect(self._database_url, enable_hstore=False) as other,
            other.cursor() as cur,
        ):
            await cur.execute("SELECT pg_notify(%s, %s)", (self._channel, self._ping))
        try:
            async with asyncio.timeout(_PING_SECONDS):
                while (payload := (await conn.notifies.get()).payload) != self._ping:
                    self._wake(payload)
        except TimeoutError:
            self.delivering = False
            log.warning(
                "notifications_not_delivered",
                hint="PgBouncer in transaction mode? Set DATABASE_LISTEN_URL to a direct "
                "connection; until then waiting lookups poll",
                poll_seconds=POLL_SECONDS,
            )
        else:
            self.delivering = True


async def release_waiters_on_shutdown(app: web.Application) -> None:
    """on_shutdown: long-polls answer at once rather than hold the shutdown for up to 30 s."""
    app[notification_hub_key].release_waiters()


async def notifications_context(app: web.Application) -> AsyncIterator[None]:
    """Listen for finished uploads (of any replica) on the prompt cache's channel."""
    settings = app[config_key].database
    database_url = settings.listen_url or settings.url
    assert database_url is not None  # pool_context, which runs first, has checked it
    hub = NotificationHub(database_url, CACHE_CHANNEL)
    hub.start()
    app[notification_hub_key] = hub
    yield
    await hub.stop()
