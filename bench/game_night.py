"""A game night against a running sidecar: concurrent games, each with players and rounds running
the whole flow, as the game server would.

Each player's turn: a lookup that waits (`wait_ms`) and registers a hit in the same call; on a
miss, a simulated paid AI call (0.5-1.5 s) and the upload with the claim. When every player of a
game has played a round, each of them loads the judge screen: the round's listing and every
picture's `large` rendition. At the end each game is replayed (the whole game's listing). About
30% of the prompts repeat across games. Reported: paid generations against the distinct
prompts, errors by status, per-operation p50/p95/p99 (the simulated AI call excluded).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import aiohttp

from testkit.images import png_bytes

PLAYERS = 6
ROUNDS = 5
REPEATED_SHARE = 0.3
POPULAR_PROMPTS = 40


@dataclass
class Night:
    games: int
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    prompts: set[str] = field(default_factory=set)
    paid: int = 0

    def p(self, quantile: float, operation: str | None = None) -> float:
        values = sorted(
            v for name, vs in self.latencies.items() if operation in (None, name) for v in vs
        )
        return values[min(len(values) - 1, int(len(values) * quantile))] * 1000 if values else 0

    @property
    def ok(self) -> bool:
        return not self.errors and self.p(0.95) <= 250

    def summary(self) -> dict[str, object]:
        return {
            "games": self.games,
            "paid_generations": self.paid,
            "distinct_prompts": len(self.prompts),
            "errors": dict(self.errors),
            "p95_ms": round(self.p(0.95), 1),
            "operations": {
                name: {
                    "count": len(values),
                    "p50_ms": round(statistics.median(values) * 1000, 1),
                    "p95_ms": round(self.p(0.95, name), 1),
                    "p99_ms": round(self.p(0.99, name), 1),
                }
                for name, values in sorted(self.latencies.items())
            },
        }


async def play_night(base: str, games: int, seed: int = 1) -> Night:
    night = Night(games)
    rnd = random.Random(seed)
    night_id = uuid.uuid4().hex[:6]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        await asyncio.gather(
            *(_play_game(session, night, rnd, night_id, f"N{night_id}{g}") for g in range(games))
        )
    return night


async def _timed(night: Night, operation: str, request: object) -> dict | bytes | None:
    started = time.perf_counter()
    try:
        async with request as response:  # type: ignore[attr-defined]
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        night.errors[f"{operation}: {type(exc).__name__}"] += 1
        return None
    night.latencies[operation].append(time.perf_counter() - started)
    if status >= 400:
        night.errors[f"{operation}: {status}"] += 1
        return None
    return body


async def _play_game(
    session: aiohttp.ClientSession, night: Night, rnd: random.Random, night_id: str, code: str
) -> None:
    game_id = str(uuid.uuid4())
    players = [str(uuid.uuid4()) for _ in range(PLAYERS)]
    for round_number in range(1, ROUNDS + 1):
        round_id = str(uuid.uuid4())
        await asyncio.gather(
            *(
                _turn(session, night, rnd, night_id, code, game_id, round_id, round_number, player)
                for player in players
            )
        )
        await asyncio.gather(
            *(_judge_screen(session, night, code, game_id, round_number) for _ in players)
        )
    await _timed(night, "replay", session.get(f"/api/games/{code}/images?game_id={game_id}"))


async def _turn(
    session: aiohttp.ClientSession,
    night: Night,
    rnd: random.Random,
    night_id: str,
    code: str,
    game_id: str,
    round_id: str,
    round_number: int,
    player: str,
) -> None:
    if rnd.random() < REPEATED_SHARE:
        # (of this night: an earlier night's cache would make a paid call look saved)
        prompt = f"A popular prompt number {rnd.randrange(POPULAR_PROMPTS)} of night {night_id}"
    else:
        prompt = f"A prompt of its own {uuid.uuid4().hex}"
    night.prompts.add(prompt)
    fields = {
        "game_code": code,
        "game_id": game_id,
        "round_id": round_id,
        "round_number": round_number,
        "player_id": player,
        "submission_id": str(uuid.uuid4()),
        "completed_sentence": prompt,
    }
    while True:
        body = await _timed(
            night,
            "lookup",
            session.post(
                "/api/cache/lookup", json={"prompt": prompt, "wait_ms": 20_000, "register": fields}
            ),
        )
        if body is None:
            return
        answer = json.loads(body)
        if answer["status"] == "hit":
            return
        if answer["status"] == "miss":
            night.paid += 1
            await asyncio.sleep(rnd.uniform(0.5, 1.5))  # the paid AI call
            form = aiohttp.FormData()
            for name, value in fields.items():
                form.add_field(name, str(value))
            form.add_field("claim_token", answer["claim_token"])
            form.add_field(
                "image",
                png_bytes(seed=hash(prompt) % 10**6, size=64),
                filename="p.png",
                content_type="image/png",
            )
            if await _timed(night, "upload", session.post("/api/images", data=form)) is None:
                # as the game server does: give the claim back, the next player need not wait
                await _timed(
                    night, "release", session.delete(f"/api/cache/claims/{answer['claim_token']}")
                )
            return


async def _judge_screen(
    session: aiohttp.ClientSession, night: Night, code: str, game_id: str, round_number: int
) -> None:
    body = await _timed(
        night,
        "listing",
        session.get(f"/api/games/{code}/rounds/{round_number}/images?game_id={game_id}"),
    )
    if body is None:
        return
    images = json.loads(body)["images"]
    for image in images:
        large = next(
            (
                r["url"]
                for r in image["renditions"]
                if (r["name"], r["format"]) == ("large", "webp")
            ),
            image["image_url"],
        )
        await _timed(night, "picture", session.get(large))
