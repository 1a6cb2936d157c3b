"""Stopping a replica never waits on a client: long-polls are answered, the process exits fast."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from testkit.helpers import sidecar_process

LONG_POLLS = 100


async def _lookup(session: aiohttp.ClientSession, url: str, **body: object) -> dict:
    async with session.post(f"{url}/api/cache/lookup", json={"prompt": "a cat", **body}) as resp:
        assert resp.status == 200
        return await resp.json()


async def test_sigterm_answers_100_waiting_lookups_and_exits_within_5_seconds(
    sidecar_environ: dict[str, str], tmp_path: Path
) -> None:
    with sidecar_process("serve", sidecar_environ, tmp_path) as (process, url):
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            assert (await _lookup(session, url))["status"] == "miss"  # the claim is now held
            waiting = [
                asyncio.create_task(_lookup(session, url, wait_ms=30_000))
                for _ in range(LONG_POLLS)
            ]
            done, _ = await asyncio.wait(waiting, timeout=2)
            assert not done, "the lookups should be waiting for the claimed prompt"

            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            answers = await asyncio.gather(*waiting)
            await asyncio.to_thread(process.wait, 10)
            seconds = time.monotonic() - started

            assert process.returncode == 0
            assert seconds < 5
            assert {answer["status"] for answer in answers} == {"pending"}
            assert all(answer["retry_after_ms"] > 0 for answer in answers)
            with pytest.raises(aiohttp.ClientConnectionError):
                await _lookup(session, url)
