"""Game nights in two pacings and two topologies, with the CPU they cost, and the CPU of each
operation measured alone.

Topologies: `embedded`, the sidecar answering everything (pictures too); `deployed`, the shipped
nginx serving the pictures from disk (asking the sidecar for a rendition not made yet) in front
of the sidecar and its workers. A ladder plays nights of growing size and stops at the first
that fails; the report gives the largest that passed.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from bench import memory
from bench.cpu import own_cpu_seconds, tree_cpu_seconds
from bench.game_night import BURST, REAL, Night, Pacing, Stage, play_night
from bench.measure import multipart
from testkit.helpers import image_fields


@dataclass(frozen=True)
class Ladder:
    pacing: Pacing
    topology: str
    games: tuple[int, ...]
    originals: str = "PNG"  # the format the AI service returns (testkit.images.as_originals)


QUICK_LADDERS = (
    Ladder(BURST, "embedded", (2,)),
    Ladder(BURST, "deployed", (2,)),
    Ladder(REAL.scaled(0.05), "embedded", (4,)),
    Ladder(REAL.scaled(0.05), "deployed", (4,)),
    Ladder(REAL.scaled(0.05), "deployed", (4,), "WEBP"),
    Ladder(REAL.scaled(0.05), "deployed", (4,), "JPEG"),
)
FULL_LADDERS = (
    Ladder(BURST, "embedded", (40, 120)),
    Ladder(BURST, "deployed", (40, 120)),
    Ladder(REAL, "embedded", (120, 250)),
    Ladder(REAL, "deployed", (120, 170, 250, 500)),
    Ladder(REAL, "deployed", (250, 350, 500), "WEBP"),
    Ladder(REAL, "deployed", (250, 350, 500), "JPEG"),
)


@dataclass(frozen=True)
class Processes:
    """The process trees whose CPU a night costs."""

    sidecar: int
    postgres: int
    nginx: int

    def cpu(self) -> dict[str, float]:
        return {
            "sidecar": tree_cpu_seconds(self.sidecar),
            "postgres": tree_cpu_seconds(self.postgres),
            "nginx": tree_cpu_seconds(self.nginx),
            "load generator": own_cpu_seconds(),
        }


def play_ladders(
    ladders: tuple[Ladder, ...],
    stages: dict[str, Stage],
    processes: Processes,
    originals: dict[str, list[bytes]],
    log: Any,
) -> list[Night]:
    """Each ladder's nights up to its first failure; then the largest real-pacing night with
    PNG originals that passed as deployed (the first played, if none passed: memory does not
    need the latencies to pass), again: the sidecar's memory after it should be what it was
    after the first (no growth per game)."""
    nights = []
    largest_real: Ladder | None = None  # deployed, at real pacing, PNG: passed, else the first
    for ladder in ladders:
        for games in ladder.games:
            night = _night(ladder, games, stages, processes, originals, log)
            nights.append(night)
            real_png = (ladder.topology, ladder.originals) == ("deployed", "PNG") and (
                ladder.pacing.name.startswith(REAL.name)
            )
            if real_png and (night.ok or largest_real is None):
                largest_real = replace(ladder, games=(games,))
            if not night.ok:
                break
    if largest_real is not None:
        again = _night(largest_real, largest_real.games[0], stages, processes, originals, log)
        again.again = True
        nights.append(again)
    return nights


def _night(
    ladder: Ladder,
    games: int,
    stages: dict[str, Stage],
    processes: Processes,
    originals: dict[str, list[bytes]],
    log: Any,
) -> Night:
    log(
        f"game night: {games} games, {ladder.pacing.name} pacing, {ladder.topology}, "
        f"{ladder.originals} originals..."
    )
    before, memory_before = processes.cpu(), memory.by_role(processes.sidecar)
    night = asyncio.run(
        play_night(stages[ladder.topology], games, ladder.pacing, originals[ladder.originals])
    )
    night.originals = ladder.originals
    after = processes.cpu()
    night.memory_before, night.memory_after = memory_before, memory.by_role(processes.sidecar)
    night.cpu_seconds = {name: after[name] - before[name] for name in after}
    return night


# --- the CPU of each operation, measured alone ------------------------------------------------


async def cpu_per_operation(
    api: str, sidecar: int, originals: dict[str, list[bytes]], count: int
) -> dict[str, float]:
    """The sidecar's CPU milliseconds per operation, each kind run `count` times alone (two at a
    time), as the service's CPU seconds over the operations; for uploads, also split between
    the serving worker and the picture processes."""
    costs: dict[str, float] = {}
    records: list[dict] = []
    async with aiohttp.ClientSession(api) as session:

        async def measured(name: str, calls: list[Any], split: bool = False) -> list[Any]:
            started = memory.cpu_seconds_by_role(sidecar)
            results = []
            for pair in range(0, len(calls), 2):
                results += await asyncio.gather(*(call() for call in calls[pair : pair + 2]))
            ended = memory.cpu_seconds_by_role(sidecar)
            used = {role: ended[role] - started.get(role, 0.0) for role in ended}
            costs[name] = sum(used.values()) / len(calls) * 1000
            if split:
                for role, label in (("worker", "serving worker"), ("picture process", "pool")):
                    costs[f"{name}, in the {label}"] = used.get(role, 0.0) / len(calls) * 1000
            return results

        async def upload(n: int, pictures: list[bytes]) -> dict:
            fields = image_fields(
                game_code=f"CPU{n}", completed_sentence=f"A cpu picture {n} {time.time()}"
            )
            form = multipart(fields, pictures[n % len(pictures)])
            async with session.post("/api/images", data=form) as response:
                assert response.status == 201, await response.text()
                return await response.json()

        async def get(url: str, expected: int = 200) -> None:
            async with session.get(url) as response:
                await response.read()
                assert response.status == expected, url

        async def post(path: str, body: dict) -> dict:
            async with session.post(path, json=body) as response:
                assert response.status in (200, 201), await response.text()
                return await response.json()

        def rendition(record: dict, name: str) -> str:
            return next(
                r["url"] for r in record["renditions"] if (r["name"], r["format"]) == (name, "webp")
            )

        # Every picture process started first (two uploads at a time, as measured): a
        # process's start (about 1.2 s of CPU, once in its life, with its forkserver) is not
        # an upload's cost.
        warm = originals["PNG"]
        for pair in range(0, 4, 2):
            await asyncio.gather(upload(1_000 + pair, warm), upload(1_001 + pair, warm))
        for image_format, pictures in originals.items():
            uploaded = await measured(
                f"upload of an AI-sized {image_format} original",
                [lambda n=n, p=pictures: upload(n, p) for n in range(count)],
                split=True,
            )
            if image_format == "PNG":
                records = uploaded
        await measured(
            "thumb made on its first GET", [lambda r=r: get(rendition(r, "thumb")) for r in records]
        )
        await measured(
            "static GET of a large WebP", [lambda r=r: get(rendition(r, "large")) for r in records]
        )
        await measured(
            "round listing",
            [lambda r=r: get(f"/api/games/{r['game_code']}/rounds/1/images") for r in records],
        )
        await measured(
            "lookup, a miss",
            [
                lambda n=n: post(
                    "/api/cache/lookup", {"prompt": f"never seen {n} {random.random()}"}
                )
                for n in range(count)
            ],
        )
        await measured(
            "lookup, a hit",
            [
                lambda r=r: post(
                    "/api/cache/lookup", {"prompt": r["prompt"], "art_style": r["art_style"]}
                )
                for r in records
            ],
        )
        await measured(
            "hit registration",
            [
                lambda r=r, n=n: post(
                    f"/api/cache/{r['prompt_hash']}/hits",
                    image_fields(
                        game_code=f"HIT{n}",
                        completed_sentence=r["prompt"],
                        art_style=r["art_style"],
                    ),
                )
                for n, r in enumerate(records)
            ],
        )
    return costs
