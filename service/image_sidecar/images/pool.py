"""The pool of processes where picture work runs (`images.decoding`'s functions), apart from
the event loop and its GIL: bounded, at a lower CPU priority, refusing work that would wait too
long, logging as the replica does."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import structlog
from aiohttp import web

from image_sidecar.appkeys import config_key, image_processor_key
from image_sidecar.errors import ServiceBusy
from image_sidecar.images.decoding import (
    RENDITION_SIDES,
    InspectedImage,
    Rendition,
    inspect,
    lookalike_hashes,
    render,
    rendition_formats,
    reuse_image_memory,
)
from image_sidecar.log import configure_logging, logs_json_lines
from image_sidecar.tracing import span

log = structlog.get_logger(__name__)

T = TypeVar("T")


def _timed(
    work: Callable[..., T], args: tuple[object, ...], kwargs: dict[str, object]
) -> tuple[T, float]:
    """Run `work` in a pool process; its result and the seconds it took there."""
    started = time.perf_counter()
    return work(*args, **kwargs), time.perf_counter() - started


def _start_picture_process(json_lines: bool) -> None:
    """Pool processes log as the replica does (one JSON object a line) and yield the CPU to the
    processes that answer requests. They keep malloc's own mmap threshold (holding it low cost
    them 5 ms of CPU an upload in page faults) and Pillow keeps their freed image memory
    (`reuse_image_memory`) for the same reason: 83-99 MB each across twelve nights in a row."""
    configure_logging(json_lines=json_lines)
    reuse_image_memory()
    with contextlib.suppress(OSError):
        os.nice(10)


class ImageProcessor:
    """The bounded pool of processes where picture work runs (IMAGE_PROCESSING_WORKERS of them,
    at a lower CPU priority than the serving process), apart from the event loop and its GIL.

    When the work already queued would keep a new job waiting longer than
    IMAGE_PROCESSING_MAX_WAIT_SECONDS, the job is refused at once with ServiceBusy (503 busy,
    Retry-After) instead of waiting tens of seconds.
    """

    def __init__(
        self,
        *,
        max_pixels: int,
        workers: int,
        formats: tuple[str, ...] = ("webp", "avif"),
        made_at_upload: tuple[tuple[str, str], ...] | None = None,
        max_wait_seconds: float = 10.0,
        web_ready_max_bytes: int = 0,
    ) -> None:
        self.max_pixels = max_pixels
        self.web_ready_max_bytes = web_ready_max_bytes
        self.rendition_formats = rendition_formats(formats)
        self.made_at_upload = made_at_upload
        self.workers = workers
        self.max_wait_seconds = max_wait_seconds
        self.queued = 0  # jobs submitted and not yet done
        self._typical_seconds = 0.05  # a moving average of a job's time in the pool
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_CONTEXT,
            initializer=_start_picture_process,
            initargs=(logs_json_lines(),),
        )

    def predicted_wait(self) -> float:
        """How long a job submitted now would wait for a free process, by the recent jobs."""
        return self.queued / self.workers * self._typical_seconds

    async def _run(self, work: Callable[..., T], *args: object, **kwargs: object) -> T:
        wait = self.predicted_wait()
        if self.queued >= self.workers and wait > self.max_wait_seconds:
            raise ServiceBusy(
                f"picture work is saturated ({self.queued} jobs queued, about {wait:.0f} s of "
                "work): retry shortly",
                retry_after_seconds=max(1, round(wait - self.max_wait_seconds)),
            )
        self.queued += 1
        try:
            with span(f"image.{work.__name__}", **{"image.queued": self.queued}):
                loop = asyncio.get_running_loop()
                result, seconds = await loop.run_in_executor(
                    self._executor, _timed, work, args, kwargs
                )
        finally:
            self.queued -= 1
        self._typical_seconds = 0.8 * self._typical_seconds + 0.2 * seconds
        return result

    async def inspect(self, data: bytes) -> InspectedImage:
        """Decode an upload; its placeholder and the renditions made at upload come with it."""
        return await self._run(
            inspect,
            data,
            self.max_pixels,
            self.rendition_formats,
            self.made_at_upload,
            web_ready_max_bytes=self.web_ready_max_bytes,
        )

    async def render(self, data: bytes, name: str, image_format: str) -> Rendition:
        return await self._run(
            render,
            data,
            self.max_pixels,
            name,
            image_format,
            web_ready_max_bytes=self.web_ready_max_bytes,
        )

    async def lookalike_hashes(self, data: bytes, crops: bool = True) -> list[bytes]:
        return await self._run(lookalike_hashes, data, self.max_pixels, crops)

    def close(self) -> None:
        """Stop the picture processes: queued work is cancelled, work under way finishes (a
        picture's worth of time), and the pool's semaphores are given back, so that a worker
        leaves nothing for the resource tracker to warn about."""
        self._executor.shutdown(wait=True, cancel_futures=True)


# A forkserver: pool processes fork from a clean process that has imported Pillow, never from
# the serving process with its event loop and threads, and start in milliseconds.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["image_sidecar.images.decoding"])


def made_at_upload(setting: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """`large.webp,thumb.webp` -> (("large", "webp"), ("thumb", "webp"))."""
    return tuple(tuple(item.split(".", 1)) for item in setting)  # type: ignore[misc]


async def imaging_context(app: web.Application) -> AsyncIterator[None]:
    storage = app[config_key].storage
    processor = ImageProcessor(
        max_pixels=storage.max_pixels,
        workers=storage.processing_workers,
        formats=storage.rendition_formats,
        made_at_upload=made_at_upload(storage.renditions_at_upload),
        max_wait_seconds=storage.processing_max_wait_seconds,
        web_ready_max_bytes=storage.web_ready_max_bytes,
    )
    log.info(
        "renditions",
        formats=list(processor.rendition_formats),
        sides=RENDITION_SIDES,
        made_at_upload=list(storage.renditions_at_upload),
    )
    app[image_processor_key] = processor
    yield
    await asyncio.to_thread(processor.close)
