"""Stopping background tasks without ever hanging a shutdown."""

from __future__ import annotations

import asyncio

import structlog

log = structlog.get_logger(__name__)


async def cancel_and_wait(task: asyncio.Task[object], timeout: float = 5.0) -> None:
    """Cancel `task` and wait for it to finish.

    A cancellation can be lost inside a library (a timeout firing at the same moment turns it
    into TimeoutError, which a retry loop then handles), so it is repeated until the task ends.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done() and loop.time() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if not task.done():
        log.warning("task_did_not_stop", task=task.get_name())
    elif not task.cancelled() and task.exception() is not None:
        log.warning("task_failed", task=task.get_name(), error=str(task.exception()))
