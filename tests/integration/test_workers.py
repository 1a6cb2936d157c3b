"""`image-sidecar serve --workers N`: N processes answer on one port, /metrics answers for them
all, a worker that dies is replaced, SIGTERM stops them all, the pools stay within the
replica's DATABASE_POOL_SIZE."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from testkit.helpers import image_fields, sidecar_process
from testkit.images import png_bytes


def _workers(supervisor: subprocess.Popen[str]) -> set[int]:
    children = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children").read_text()
    return {int(pid) for pid in children.split()}


def _running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _stored_total(exposition: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "sidecar_images_stored_total"
    )


def _wait_until(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


async def _upload(session: aiohttp.ClientSession, url: str, seed: int) -> int:
    form = aiohttp.FormData()
    for name, value in image_fields(game_code=f"W{seed}").items():
        form.add_field(name, value)
    form.add_field("image", png_bytes(seed=seed), filename="a.png")
    async with session.post(f"{url}/api/images", data=form) as response:
        return response.status


async def test_workers_share_one_port_and_metrics_answer_for_the_replica(
    sidecar_environ: dict[str, str], tmp_path: Path, database
) -> None:
    url = sidecar_environ["DATABASE_URL"]
    tagged = url + ("&" if "?" in url else "?") + "application_name=workers-under-test"
    environ = {
        **sidecar_environ,
        "DATABASE_URL": tagged,
        "IMAGE_SIDECAR_WORKERS": "3",
        "DATABASE_POOL_SIZE": "6",
    }
    with sidecar_process("serve", environ, tmp_path) as (process, url):
        _wait_until(lambda: len(_workers(process)) == 3)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            statuses = await asyncio.gather(*(_upload(s, url, seed) for seed in range(12)))
            assert statuses == [201] * 12
            for _ in range(6):  # whichever worker takes the scrape
                async with s.get(f"{url}/metrics") as response:
                    assert _stored_total(await response.text()) == 12
        connections = database.rows(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = %s",
            "workers-under-test",
        )[0]["n"]
        assert connections > 0
        assert connections <= 6 + 3  # each worker's share of the pool, and its LISTEN


async def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(
    sidecar_environ: dict[str, str], tmp_path: Path
) -> None:
    environ = {**sidecar_environ, "IMAGE_SIDECAR_WORKERS": "2"}
    with sidecar_process("serve", environ, tmp_path) as (process, url):
        _wait_until(lambda: len(_workers(process)) == 2)
        first = _workers(process)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        _wait_until(lambda: len(_workers(process)) == 2 and victim not in _workers(process))
        async with aiohttp.ClientSession() as session:
            for _ in range(10):
                async with session.get(f"{url}/readyz") as response:
                    assert response.status == 200
        workers = _workers(process)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 15)
        assert process.returncode == 0
        assert time.monotonic() - started < 5
        assert not [pid for pid in workers if _running(pid)]


async def test_workers_stop_when_their_supervisor_is_killed(
    sidecar_environ: dict[str, str], tmp_path: Path
) -> None:
    """An orphaned worker would keep the port and its database connections."""
    environ = {**sidecar_environ, "IMAGE_SIDECAR_WORKERS": "2"}
    with sidecar_process("serve", environ, tmp_path) as (process, _):
        _wait_until(lambda: len(_workers(process)) == 2)
        workers = _workers(process)
        process.kill()
        await asyncio.to_thread(process.wait, 10)
        await asyncio.to_thread(_wait_until, lambda: not [p for p in workers if _running(p)])
