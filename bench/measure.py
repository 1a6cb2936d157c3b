"""How a benchmark run measures: its sizes, a measure, a scenario of alternating rounds against
its baseline, and the load generators (wrk, and concurrent aiohttp clients)."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp


@dataclass(frozen=True)
class Size:
    images: int  # distinct 150 KB pictures uploaded (and served)
    listing_rows: int
    cleanup_images: int
    seconds: int  # of each wrk load
    rounds: int
    uploads: int  # per upload run
    hits: int  # per hit-registration run
    scale_images: int  # the smaller store of the scale table (the larger: ten times as many)


QUICK = Size(
    images=40,
    listing_rows=2_000,
    cleanup_images=2_000,
    seconds=2,
    rounds=1,
    uploads=32,
    hits=100,
    scale_images=10_000,
)
FULL = Size(
    images=1_000,
    listing_rows=40_000,
    cleanup_images=100_000,
    seconds=10,
    rounds=3,
    uploads=400,
    hits=1_000,
    scale_images=100_000,
)


@dataclass
class Measure:
    value: float  # what the scenario compares (req/s, ops/s or seconds)
    p99_ms: float | None = None
    load: float = 0.0  # 1-minute load average before the run


@dataclass
class Scenario:
    """One row of the table: a hot path (ours) against its baseline, in alternating rounds."""

    name: str
    unit: str
    higher_is_better: bool
    goal: float  # the ratio the target asks for
    ours: list[Measure] = field(default_factory=list)
    baseline: list[Measure] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f">= {self.goal}" if self.higher_is_better else f"<= {self.goal}x"

    def median(self, runs: list[Measure]) -> float:
        return statistics.median(m.value for m in runs)

    @property
    def ratio(self) -> float:
        ours, base = self.median(self.ours), self.median(self.baseline)
        return ours / base if base else float("nan")

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal


def measured(run: Callable[[], Measure]) -> Measure:
    load = os.getloadavg()[0]
    result = run()
    result.load = load
    return result


def alternate(
    scenario: Scenario, rounds: int, ours: Callable[[], Measure], baseline: Callable[[], Measure]
) -> Scenario:
    for _ in range(rounds):
        scenario.ours.append(measured(ours))
        scenario.baseline.append(measured(baseline))
    return scenario


def rate(latencies: list[float], seconds: float) -> Measure:
    """Operations per second and the p99 latency of a run."""
    latencies.sort()
    return Measure(len(latencies) / seconds, latencies[int(len(latencies) * 0.99) - 1] * 1000)


# --- load generators --------------------------------------------------------------------------

RANDOM_PATHS = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(os.time())
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""
POST_BODY = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%s'
"""


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> Measure:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    if found is None or "Non-2xx" in output:
        raise SystemExit(f"wrk failed on {url}:\n{output}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return Measure(
        float(found.group(1)), float(p99.group(1)) * scale[p99.group(2)] if p99 else None
    )


def multipart(fields: dict[str, str], image: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("image", image, filename="a.png", content_type="application/octet-stream")
    return form


async def in_parallel(
    count: int, concurrency: int, operation: Callable[[], Awaitable[None]]
) -> Measure:
    """Run `operation` `count` times, `concurrency` at a time; ops/s and p99 latency."""
    latencies: list[float] = []
    remaining = [count]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            await operation()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return rate(latencies, time.perf_counter() - started)


async def post_all(
    base: str, requests: list[Callable[[aiohttp.ClientSession], object]], concurrency: int
) -> Measure:
    """Run the requests `concurrency` at a time; ops/s and p99 latency."""
    queue = list(requests)
    async with aiohttp.ClientSession(base) as session:

        async def send() -> None:
            async with queue.pop()(session) as response:  # type: ignore[attr-defined]
                await response.read()
                if response.status >= 300:
                    raise SystemExit(f"{response.status}: {await response.text()}")

        return await in_parallel(len(queue), concurrency, send)
