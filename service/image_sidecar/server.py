"""Run the application: listen, answer every error as JSON, stop within a bounded time, and
with several workers, supervise them.

`web.run_app` would do most of this, but it cannot change how aiohttp answers a request its HTTP
parser refuses (plain text), and its shutdown waits 60 s for requests in flight. Here:

- the connection handler renders the parser's refusals (a request line or header over the
  limits, bytes that are not allowed in a path) with the contract's JSON error shape;
- on SIGTERM or SIGINT the listening sockets close, `on_shutdown` answers the waiting lookups,
  and requests still running get `shutdown_seconds` before they are cancelled;
- `serve_workers` binds the port once and forks N workers that accept on it (the kernel
  spreads connections among them), replaces a worker that dies, and on SIGTERM stops them all
  within the shutdown bound. Their metrics go to one prometheus_client multiprocess directory,
  so `/metrics` answers for the whole replica whichever worker takes the scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import structlog
import structlog.contextvars
from aiohttp import web

from image_sidecar.api.errors import HTTP_ERROR_CODES, error_body
from image_sidecar.config import Config, ServerSettings

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


async def serve_until_stopped(
    app: web.Application, settings: ServerSettings, sock: socket.socket | None = None
) -> None:
    """Serve `app` on host:port (or on `sock`, bound by the supervisor) until SIGTERM or
    SIGINT, then shut down within the bound."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = SidecarRunner(app, shutdown_seconds=settings.shutdown_seconds)
    await runner.setup()
    try:
        if sock is None:
            await web.TCPSite(runner, settings.host, settings.port).start()
        else:
            await web.SockSite(runner, sock).start()
        log.info("serving", url=f"http://{settings.host}:{settings.port}")
        await stop.wait()
        log.info("shutting_down", grace_seconds=settings.shutdown_seconds)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
    log.info("stopped")


# A worker that dies within this long of its start is replaced only after a pause, so that a
# worker that cannot start does not fork in a tight loop; after this many such deaths in a row
# the supervisor gives up (the log says why the workers fail).
_QUICK_DEATH_SECONDS = 1.0
_QUICK_DEATHS_TOLERATED = 5


def worker_config(config: Config, workers: int) -> Config:
    """One worker's share of the replica's database pool and picture processes."""
    return replace(
        config,
        database=replace(config.database, pool_size=max(1, config.database.pool_size // workers)),
        storage=replace(
            config.storage,
            processing_workers=max(1, config.storage.processing_workers // workers),
        ),
    )


class Supervisor:
    """Forks the workers of a replica onto one bound socket and keeps them running."""

    def __init__(self, config: Config, build_app: Callable[[Config], web.Application]) -> None:
        self.settings = config.server
        self.shared = worker_config(config, self.settings.workers)
        self.build_app = build_app
        self.sock = socket.create_server((self.settings.host, self.settings.port), backlog=1024)
        self.metrics_dir = tempfile.mkdtemp(prefix="image-sidecar-metrics-")
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (worker number, started)
        self.deadline: float | None = None  # set when stopping
        self.failure: str | None = None

    def spawn(self, number: int) -> None:
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: serve until told to stop, never return into the supervisor
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _stop_with(supervisor)
                _use_multiprocess_metrics(self.metrics_dir)
                structlog.contextvars.bind_contextvars(worker=number)
                app = self.build_app(self.shared)
                asyncio.run(serve_until_stopped(app, self.settings, self.sock))
                code = 0
            except BaseException:
                log.exception("worker_failed", worker=number)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)  # not the supervisor's atexit handlers (its embedded PostgreSQL)
        self.children[pid] = (number, time.monotonic())

    def stop(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.settings.shutdown_seconds + 5
            log.info("shutting_down", grace_seconds=self.settings.shutdown_seconds)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def run(self) -> None:
        """Start the workers and reap them until all are gone after a stop: one that dies
        before is replaced, those still running at the deadline are killed."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        log.info(
            "serving",
            url=f"http://{self.settings.host}:{self.settings.port}",
            workers=self.settings.workers,
            pool_size_each=self.shared.database.pool_size,
            picture_processes_each=self.shared.storage.processing_workers,
        )
        try:
            for number in range(self.settings.workers):
                self.spawn(number)
            self._reap()
        finally:
            self.sock.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        if self.failure:
            raise SystemExit(f"image-sidecar: {self.failure}: see the log above")
        log.info("stopped")

    def _reap(self) -> None:
        quick_deaths = 0
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                if self.deadline is not None and time.monotonic() > self.deadline:
                    for straggler in self.children:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(straggler, signal.SIGKILL)
                time.sleep(0.05)
                continue
            number, started = self.children.pop(pid)
            if self.deadline is not None:
                continue
            code = os.waitstatus_to_exitcode(status)
            log.warning("worker_died", worker=number, pid=pid, status=code)
            quick = time.monotonic() - started < _QUICK_DEATH_SECONDS
            quick_deaths = quick_deaths + 1 if quick else 0
            if quick_deaths >= _QUICK_DEATHS_TOLERATED:
                self.failure = f"{quick_deaths} workers in a row died as they started"
                self.stop()
                continue
            if quick:
                time.sleep(_QUICK_DEATH_SECONDS)
            if self.deadline is None:
                self.spawn(number)


def serve_workers(config: Config, build_app: Callable[[Config], web.Application]) -> None:
    """Bind host:port, fork `config.server.workers` workers serving `build_app`'s app on it,
    keep that many running, and stop them all on SIGTERM or SIGINT within the bound."""
    Supervisor(config, build_app).run()


def return_large_buffers_to_the_system() -> None:
    """Have glibc's malloc give every large buffer (an upload's body, its copies for the picture
    pool) its own mapping, returned to the system when freed. By default the threshold for that
    rises with each large buffer freed, after which large buffers come from the heap and stay
    resident: measured after a 40-game burst, each worker held 184 MB instead of 66
    (docs/operations.md), at about 1 ms of CPU an upload in page faults. Setting the threshold
    also stops it moving. Called before the workers fork, which inherit it; nothing on a C
    library without `mallopt`."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _LARGE_BUFFER_BYTES)


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_LARGE_BUFFER_BYTES = 128 * 1024  # glibc's default, held fixed


def _stop_with(supervisor: int) -> None:
    """A worker gets SIGTERM when its supervisor dies (even by SIGKILL), so that no orphan keeps
    serving on the port or holding database connections (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def _use_multiprocess_metrics(directory: str) -> None:
    """From here on this process's metrics are kept in `directory`, shared by the workers."""
    from prometheus_client import values

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.MultiProcessValue()
