"""A game night against a running sidecar: concurrent games, each with players and rounds running
the whole flow, as the game server would, at a pacing.

Each player's turn: the player types (up to the pacing's `submit_within`), then a lookup that
registers a hit in the same call; on a miss, a simulated paid AI call (the pacing's
`ai_seconds`) and the upload of an AI-sized picture with the claim; on a pending, a long-poll
(`wait_ms`) until the other player's picture arrives. When every player of a game has played a
round, each of them loads the judge screen: the round's listing and every picture's `large`
WebP. At the end each game is replayed (the whole game's listing). About 30% of the prompts
repeat within the night.

Reported: paid generations against distinct prompts, errors by operation and status, p50, p95
and p99 per operation. A long-poll waits for another player's AI call by design: it is reported
apart ("long-poll") and left out of the night's verdict, which asks 0 errors and every other
operation's p95 within 250 ms. The simulated AI calls and typing are never timed.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

import aiohttp

from bench.memory import RoleMemory

PLAYERS = 6
ROUNDS = 5
REPEATED_SHARE = 0.3
POPULAR_PROMPTS = 40
P95_BOUND_MS = 250
# The game server's upload timeout (the Node client's uploadTimeoutMs): a burst's uploads may
# queue for the picture processes up to it, the sidecar refusing past IMAGE_PROCESSING_MAX_WAIT_
# SECONDS (25 s); at burst pacing the other operations keep their p95 within 100 ms.
UPLOAD_TIMEOUT_S = 30
BURST_OTHERS_P95_MS = 100
WAITED = "long-poll"  # design-imposed waits: reported, not judged


@dataclass(frozen=True)
class Pacing:
    name: str
    start_within: float  # seconds over which the games start
    ai_seconds: tuple[float, float]  # a paid AI call
    submit_within: float  # a player's typing before the turn
    # a night passes with every operation's p95 within these (uploads, and the others)
    upload_p95_ms: float = P95_BOUND_MS
    others_p95_ms: float = P95_BOUND_MS

    def scaled(self, factor: float) -> Pacing:
        """The same night, its waits `factor` times as long (quick runs)."""
        low, high = self.ai_seconds
        return replace(
            self,
            name=f"{self.name} (waits x{factor:g})",
            start_within=self.start_within * factor,
            ai_seconds=(low * factor, high * factor),
            submit_within=self.submit_within * factor,
        )


BURST = Pacing(
    "burst",
    start_within=5,
    ai_seconds=(0.5, 1.5),
    submit_within=1,
    upload_p95_ms=UPLOAD_TIMEOUT_S * 1000,
    others_p95_ms=BURST_OTHERS_P95_MS,
)
REAL = Pacing("real", start_within=60, ai_seconds=(8, 20), submit_within=30)


@dataclass
class Night:
    games: int
    pacing: str
    topology: str
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    prompts: set[str] = field(default_factory=set)
    paid: int = 0
    seconds: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # by process tree
    # the sidecar's RSS by role (bench.memory), before and after the night
    memory_before: dict[str, RoleMemory] = field(default_factory=dict)
    memory_after: dict[str, RoleMemory] = field(default_factory=dict)
    again: bool = False  # a second night of the size that passed, played to watch memory
    originals: str = "PNG"  # the format of the pictures uploaded
    upload_p95_ms: float = P95_BOUND_MS
    others_p95_ms: float = P95_BOUND_MS

    def p(self, quantile: float, operation: str) -> float:
        values = sorted(self.latencies.get(operation, ()))
        return values[min(len(values) - 1, int(len(values) * quantile))] * 1000 if values else 0

    @property
    def judged(self) -> list[str]:
        return [name for name in sorted(self.latencies) if name != WAITED]

    def bound_ms(self, operation: str) -> float:
        return self.upload_p95_ms if operation == "upload" else self.others_p95_ms

    @property
    def ok(self) -> bool:
        return not self.errors and all(self.p(0.95, op) <= self.bound_ms(op) for op in self.judged)

    def summary(self) -> dict[str, object]:
        return {
            "games": self.games,
            "pacing": self.pacing,
            "topology": self.topology,
            "originals": self.originals,
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "paid_generations": self.paid,
            "distinct_prompts": len(self.prompts),
            "errors": dict(self.errors),
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu_seconds.items()},
            "again": self.again,
            "rss_mb_before": {k: round(v.rss_mb, 1) for k, v in self.memory_before.items()},
            "rss_mb_after": {k: round(v.rss_mb, 1) for k, v in self.memory_after.items()},
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


@dataclass(frozen=True)
class Stage:
    """Where the night plays: the API's base URL, and the origin pictures are fetched from
    (the sidecar itself, or nginx in front of the disk)."""

    topology: str
    api: str
    pictures: str


async def play_night(
    stage: Stage, games: int, pacing: Pacing, pictures: list[bytes], seed: int = 1
) -> Night:
    night = Night(
        games,
        pacing.name,
        stage.topology,
        upload_p95_ms=pacing.upload_p95_ms,
        others_p95_ms=pacing.others_p95_ms,
    )
    rnd = random.Random(seed)
    night_id = uuid.uuid4().hex[:6]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        game = _Game(session, night, stage, pacing, pictures, rnd, night_id)
        await asyncio.gather(*(game.play(f"N{night_id}{g}") for g in range(games)))
    night.seconds = time.perf_counter() - started
    return night


@dataclass
class _Game:
    session: aiohttp.ClientSession
    night: Night
    stage: Stage
    pacing: Pacing
    pictures: list[bytes]
    rnd: random.Random
    night_id: str

    async def timed(self, operation: str, request: object) -> bytes | None:
        started = time.perf_counter()
        try:
            async with request as response:  # type: ignore[attr-defined]
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.night.errors[f"{operation}: {type(exc).__name__}"] += 1
            return None
        self.night.latencies[operation].append(time.perf_counter() - started)
        if status >= 400:
            self.night.errors[f"{operation}: {status}"] += 1
            return None
        return body

    async def play(self, code: str) -> None:
        await asyncio.sleep(self.rnd.uniform(0, self.pacing.start_within))
        game_id = str(uuid.uuid4())
        players = [str(uuid.uuid4()) for _ in range(PLAYERS)]
        for round_number in range(1, ROUNDS + 1):
            round_id = str(uuid.uuid4())
            await asyncio.gather(
                *(self.turn(code, game_id, round_id, round_number, p) for p in players)
            )
            await asyncio.gather(*(self.judge_screen(code, game_id, round_number) for _ in players))
        await self.timed(
            "replay",
            self.session.get(f"{self.stage.api}/api/games/{code}/images?game_id={game_id}"),
        )

    def prompt(self) -> str:
        if self.rnd.random() < REPEATED_SHARE:
            # (of this night: an earlier night's cache would make a paid call look saved)
            number = self.rnd.randrange(POPULAR_PROMPTS)
            prompt = f"A popular prompt number {number} of night {self.night_id}"
        else:
            prompt = f"A prompt of its own {uuid.uuid4().hex}"
        self.night.prompts.add(prompt)
        return prompt

    async def turn(
        self, code: str, game_id: str, round_id: str, round_number: int, player: str
    ) -> None:
        await asyncio.sleep(self.rnd.uniform(0, self.pacing.submit_within))  # typing
        prompt = self.prompt()
        fields = {
            "game_code": code,
            "game_id": game_id,
            "round_id": round_id,
            "round_number": round_number,
            "player_id": player,
            "submission_id": str(uuid.uuid4()),
            "completed_sentence": prompt,
        }
        operation, wait_ms = "lookup", 0
        while True:
            body = await self.timed(
                operation,
                self.session.post(
                    f"{self.stage.api}/api/cache/lookup",
                    json={"prompt": prompt, "wait_ms": wait_ms, "register": fields},
                ),
            )
            if body is None:
                return
            answer = json.loads(body)
            if answer["status"] == "hit":
                return
            if answer["status"] == "miss":
                await self.generate_and_upload(fields, answer["claim_token"])
                return
            operation, wait_ms = WAITED, 20_000  # pending: another player's AI call

    async def generate_and_upload(self, fields: dict[str, object], claim_token: str) -> None:
        self.night.paid += 1
        await asyncio.sleep(self.rnd.uniform(*self.pacing.ai_seconds))  # the paid AI call
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, str(value))
        form.add_field("claim_token", claim_token)
        picture = self.pictures[self.rnd.randrange(len(self.pictures))]
        form.add_field("image", picture, filename="p.png", content_type="image/png")
        uploaded = await self.timed(
            "upload",
            self.session.post(
                f"{self.stage.api}/api/images",
                data=form,
                timeout=aiohttp.ClientTimeout(total=UPLOAD_TIMEOUT_S),
            ),
        )
        if uploaded is None:
            # as the game server does: give the claim back, the next player need not wait
            await self.timed(
                "release", self.session.delete(f"{self.stage.api}/api/cache/claims/{claim_token}")
            )

    async def judge_screen(self, code: str, game_id: str, round_number: int) -> None:
        listing = (
            f"{self.stage.api}/api/games/{code}/rounds/{round_number}/images?game_id={game_id}"
        )
        body = await self.timed("listing", self.session.get(listing))
        if body is None:
            return
        for image in json.loads(body)["images"]:
            url = next(
                (
                    r["url"]
                    for r in image["renditions"]
                    if (r["name"], r["format"]) == ("large", "webp")
                ),
                image["image_url"],
            )  # a path under /generated-images: the sidecar's or nginx's
            await self.timed("picture", self.session.get(self.stage.pictures + url))
