"""Every hot path of the sidecar against a baseline measured in the same run.

    python -m bench            # the full run: realistic data, 3 alternating rounds, 10 s loads
    python -m bench --quick    # CI: small data, one round, 2 s loads (numbers, not targets)

Starts what it needs on loopback: a PostgreSQL (embedded, or BENCH_DATABASE_URL's server),
`image-sidecar serve`, the baselines' bare aiohttp app (bench/baselines.py), nginx with the
shipped config and with a minimal one; wrk (Debian's `wrk`) is the load generator. Ours and the
baseline run alternately, round after round; the table shows medians, the ratio, the target and
whether it is met, and the machine's load before each run goes to the JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psycopg2

from bench.cleanup_backlog import bench_database
from bench.game_night import PLAYERS, ROUNDS, Night, play_night
from bench.serve_images import _wait_for
from tests.helpers import free_port, image_fields
from tests.nginx import nginx_main_config
from tests.sample_images import noise_png
from tests.seeding import seed_images

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Size:
    images: int  # distinct 150 KB pictures uploaded (and served)
    listing_rows: int
    cleanup_images: int
    seconds: int  # of each wrk load
    rounds: int
    uploads: int  # per upload run
    hits: int  # per hit-registration run
    game_nights: tuple[int, ...]  # concurrent games of each night played


QUICK = Size(
    images=40,
    listing_rows=2_000,
    cleanup_images=2_000,
    seconds=2,
    rounds=1,
    uploads=32,
    hits=100,
    game_nights=(2,),
)
FULL = Size(
    images=1_000,
    listing_rows=40_000,
    cleanup_images=100_000,
    seconds=10,
    rounds=3,
    uploads=400,
    hits=1_000,
    game_nights=(10, 40, 120),
)


@dataclass
class Measure:
    value: float  # what the scenario compares (req/s, ops/s or seconds)
    p99_ms: float | None = None
    load: float = 0.0  # 1-minute load average before the run


@dataclass
class Scenario:
    name: str
    unit: str
    target: str
    higher_is_better: bool
    goal: float  # the ratio the target asks for
    ours: list[Measure] = field(default_factory=list)
    baseline: list[Measure] = field(default_factory=list)

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


# --- load generators --------------------------------------------------------------------------

_RANDOM_PATHS = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(os.time())
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""
_POST_BODY = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%s'
"""


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> Measure:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    if rate is None or "Non-2xx" in output:
        raise SystemExit(f"wrk failed on {url}:\n{output}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return Measure(float(rate.group(1)), float(p99.group(1)) * scale[p99.group(2)] if p99 else None)


def script(work: Path, name: str, text: str) -> Path:
    path = work / name
    path.write_text(text)
    return path


# --- the processes -------------------------------------------------------------------------


@contextmanager
def running(command: list[str], environ: dict[str, str], health: str) -> Iterator[None]:
    process = subprocess.Popen(
        command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(health)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def multipart(fields: dict[str, str], image: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("image", image, filename="a.png", content_type="application/octet-stream")
    return form


async def post_all(
    base: str, requests: list[Callable[[aiohttp.ClientSession], object]], concurrency: int
) -> Measure:
    """Run the requests `concurrency` at a time; ops/s and p99 latency."""
    latencies: list[float] = []
    queue = list(requests)

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            make = queue.pop()
            started = time.perf_counter()
            async with make(session) as response:  # type: ignore[attr-defined]
                await response.read()
                if response.status >= 300:
                    raise SystemExit(f"{response.status}: {await response.text()}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with aiohttp.ClientSession(base) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    latencies.sort()
    return Measure(len(latencies) / seconds, latencies[int(len(latencies) * 0.99) - 1] * 1000)


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, one round (CI)")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs {tool} (Debian: apt-get install {tool})")
    work = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    storage = work / "images"
    storage.mkdir()
    scenarios: list[Scenario] = []
    with bench_database(work) as url:
        port, bare_port, nginx_port, plain_port = (free_port() for _ in range(4))
        base, bare = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        environ = {
            **os.environ,
            "DATABASE_URL": url,
            "IMAGE_STORAGE_BASE_DIR": str(storage),
            "IMAGE_SIDECAR_PORT": str(port),
            "IMAGE_CLEANUP_ENABLED": "false",
        }
        sidecar = [sys.executable, "-m", "image_sidecar", "serve"]
        baselines = [sys.executable, "-m", "bench.baselines", url, str(storage), str(bare_port)]
        with (
            running(sidecar, environ, base + "/healthz"),
            running(baselines, dict(os.environ), bare + "/healthz"),
        ):
            print(f"uploading {size.images} distinct 150 KB pictures...", file=sys.stderr)
            records = asyncio.run(_upload_pictures(base, size.images))
            os.sync()
            paths = script(work, "paths.txt", "\n".join(r["image_url"] for r in records) + "\n")
            randomly = script(work, "random.lua", _RANDOM_PATHS % paths)
            c = 32
            scenarios.append(
                alternate(
                    Scenario("static GET, random 150 KB images", "req/s", ">= 0.9", True, 0.9),
                    size.rounds,
                    lambda: wrk(base, size.seconds, c, randomly),
                    lambda: wrk(bare, size.seconds, c, randomly),
                )
            )
            with _nginx(work, storage, nginx_port, plain_port):
                scenarios.append(
                    alternate(
                        Scenario(
                            "nginx: shipped config vs a minimal sendfile one",
                            "req/s",
                            ">= 0.95",
                            True,
                            0.95,
                        ),
                        size.rounds,
                        lambda: wrk(f"http://127.0.0.1:{nginx_port}", size.seconds, c, randomly),
                        lambda: wrk(f"http://127.0.0.1:{plain_port}", size.seconds, c, randomly),
                    )
                )

            rounds = _seed_listing(url, size.listing_rows)
            listing = script(
                work,
                "listing.lua",
                _RANDOM_PATHS
                % script(
                    work,
                    "rounds.txt",
                    "\n".join(f"/api/games/LIST/rounds/{n}/images" for n in range(rounds)) + "\n",
                ),
            )
            scenarios.append(
                alternate(
                    Scenario(
                        f"round listing, {size.listing_rows:,} rows, 32 conn.",
                        "req/s",
                        ">= 0.85",
                        True,
                        0.85,
                    ),
                    size.rounds,
                    lambda: wrk(base, size.seconds, c, listing),
                    lambda: wrk(bare, size.seconds, c, listing),
                )
            )

            cached = records[0]
            lookup = script(
                work,
                "lookup.lua",
                _POST_BODY
                % json.dumps({"prompt": cached["prompt"], "art_style": cached["art_style"]}),
            )
            entry = script(
                work, "entry.lua", _POST_BODY % json.dumps({"prompt_hash": cached["prompt_hash"]})
            )
            scenarios.append(
                alternate(
                    Scenario("cache lookup (a hit), 32 conn.", "req/s", ">= 0.85", True, 0.85),
                    size.rounds,
                    lambda: wrk(base + "/api/cache/lookup", size.seconds, c, lookup),
                    lambda: wrk(bare + "/api/cache/lookup", size.seconds, c, entry),
                )
            )

            scenarios.append(
                alternate(
                    Scenario(
                        "hit registration, 50 clients, one prompt", "ops/s", ">= 0.5", True, 0.5
                    ),
                    size.rounds,
                    lambda: asyncio.run(_register_hits(base, cached, size.hits)),
                    lambda: asyncio.run(_counter_updates(url, cached["prompt_hash"], size.hits)),
                )
            )

            nights = []
            for games in size.game_nights:
                print(f"game night: {games} games...", file=sys.stderr)
                nights.append(asyncio.run(play_night(base, games)))

            picture = noise_png(222)
            for concurrency in (16, 1):
                scenarios.append(
                    alternate(
                        Scenario(
                            f"upload 150 KB, concurrency {concurrency}",
                            "img/s",
                            ">= 0.6",
                            True,
                            0.6,
                        ),
                        size.rounds,
                        lambda n=concurrency: asyncio.run(_uploads(base, picture, size.uploads, n)),
                        lambda n=concurrency: asyncio.run(
                            _baseline_uploads(url, storage, picture, size.uploads, n)
                        ),
                    )
                )

        scenarios.append(
            alternate(
                Scenario(
                    f"cleanup of {size.cleanup_images:,} expired images on disk",
                    "s",
                    "<= 1.2x",
                    False,
                    1.2,
                ),
                size.rounds,
                lambda: _timed_cleanup(url, work, size.cleanup_images, ours=True),
                lambda: _timed_cleanup(url, work, size.cleanup_images, ours=False),
            )
        )
    shutil.rmtree(work, ignore_errors=True)
    _report(scenarios, nights, size, quick=args.quick)


async def _upload_pictures(base: str, count: int) -> list[dict]:
    records = []
    async with aiohttp.ClientSession(base) as session:
        for n in range(count):
            fields = image_fields(game_code="BENCH", completed_sentence=f"Picture number {n}")
            async with session.post(
                "/api/images", data=multipart(fields, noise_png(222, seed=n))
            ) as r:
                if r.status != 201:
                    raise SystemExit(await r.text())
                records.append(await r.json())
    return records


def _seed_listing(url: str, rows: int) -> int:
    """`rows` live images of one game (code LIST), 8 per round: a listing answers 8 records."""
    rounds = rows // 8
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        game = str(uuid.uuid4())
        cur.execute("INSERT INTO games (game_id, game_code) VALUES (%s, 'LIST')", (game,))
        cur.execute(
            """
            INSERT INTO generated_images (
                image_id, submission_id, game_id, game_code, round_id, round_number, player_id,
                completed_sentence, prompt, image_path, image_url, content_type, size_bytes,
                sha256, prompt_hash, expires_at, width, height)
            SELECT gen_random_uuid(), gen_random_uuid(), %(game)s, 'LIST', gen_random_uuid(),
                   n / 8, gen_random_uuid(), 'A sentence ' || n, 'A sentence ' || n,
                   'game-LIST/round-' || (n / 8) || '/player-' || n || '.png', '/x',
                   'image/png', 150000, repeat('a', 64), repeat('b', 64),
                   now() + interval '30 days', 1024, 1024
            FROM generate_series(0, %(rows)s - 1) AS n
            """,
            {"game": game, "rows": rows},
        )
        cur.execute("ANALYZE generated_images")
    conn.close()
    return rounds


async def _register_hits(base: str, cached: dict, hits: int) -> Measure:
    def hit() -> Callable[[aiohttp.ClientSession], object]:
        fields = image_fields(
            game_code=f"HIT{random.randrange(10**6)}",
            completed_sentence=cached["prompt"],
            art_style=cached["art_style"],
        )
        return lambda s: s.post(f"/api/cache/{cached['prompt_hash']}/hits", json=fields)

    return await post_all(base, [hit() for _ in range(hits)], 50)


async def _counter_updates(url: str, key: str, count: int) -> Measure:
    """The baseline of a hit: one atomic UPDATE of the popular row, 50 clients at once."""
    import aiopg

    latencies: list[float] = []
    async with aiopg.create_pool(url, minsize=10, maxsize=10, enable_hstore=False) as pool:
        remaining = [count]

        async def worker() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                started = time.perf_counter()
                async with pool.acquire() as conn, conn.cursor() as cur:
                    await cur.execute(
                        "UPDATE image_cache SET hit_count = hit_count + 1 WHERE prompt_hash = %s",
                        (key,),
                    )
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(50)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return Measure(len(latencies) / seconds, latencies[int(len(latencies) * 0.99) - 1] * 1000)


async def _uploads(base: str, picture: bytes, count: int, concurrency: int) -> Measure:
    def upload() -> Callable[[aiohttp.ClientSession], object]:
        fields = image_fields(game_code=f"UP{random.randrange(10**6)}")
        return lambda s: s.post("/api/images", data=multipart(fields, picture))

    return await post_all(base, [upload() for _ in range(count)], concurrency)


async def _baseline_uploads(
    url: str, storage: Path, picture: bytes, count: int, concurrency: int
) -> Measure:
    """What an upload cannot do without: decode and render with the same library and settings
    in the same pool size, write the file (temp, fsync, rename), one INSERT."""
    import aiopg

    from image_sidecar.imaging import ImageProcessor

    processor = ImageProcessor(max_pixels=40_000_000, workers=2, formats=("webp", "avif"))
    target = storage / "baseline"
    target.mkdir(exist_ok=True)
    latencies: list[float] = []

    def write(name: str, data: bytes) -> None:
        temp = target / f".tmp-{name}"
        with temp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        temp.rename(target / name)

    try:
        async with aiopg.create_pool(url, minsize=1, maxsize=10, enable_hstore=False) as pool:
            remaining = [count]

            async def worker() -> None:
                while remaining[0] > 0:
                    remaining[0] -= 1
                    started = time.perf_counter()
                    image = await processor.inspect(picture)
                    name = uuid.uuid4().hex
                    await asyncio.to_thread(write, name + ".png", picture)
                    for made in image.renditions:
                        await asyncio.to_thread(
                            write, f"{name}.{made.name}.{made.format}", made.data
                        )
                    async with pool.acquire() as conn, conn.cursor() as cur:
                        await cur.execute(
                            "INSERT INTO cache_hits (prompt_hash, image_id, cost_saved_usd) "
                            "VALUES (%s, gen_random_uuid(), 0)",
                            (image.sha256,),
                        )
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            seconds = time.perf_counter() - started
    finally:
        processor.close()
        shutil.rmtree(target, ignore_errors=True)
    latencies.sort()
    return Measure(len(latencies) / seconds, latencies[int(len(latencies) * 0.99) - 1] * 1000)


def _timed_cleanup(url: str, work: Path, count: int, *, ours: bool) -> Measure:
    """Seed `count` expired images with files (synced), then time their deletion: the
    sidecar's cleanup, or `find -delete` and one DELETE."""
    storage = work / "cleanup"
    seed_images(url, storage, count, game_code="OLD")
    os.sync()
    started = time.perf_counter()
    if ours:
        environ = {**os.environ, "DATABASE_URL": url, "IMAGE_STORAGE_BASE_DIR": str(storage)}
        subprocess.run(
            [sys.executable, "-m", "image_sidecar", "cleanup"],
            env=environ,
            check=True,
            capture_output=True,
        )
    else:
        subprocess.run(["find", str(storage), "-type", "f", "-delete"], check=True)
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM generated_images WHERE expires_at <= now()")
        conn.close()
    seconds = time.perf_counter() - started
    shutil.rmtree(storage, ignore_errors=True)
    return Measure(seconds)


@contextmanager
def _nginx(work: Path, storage: Path, port: int, plain_port: int) -> Iterator[None]:
    """The shipped config (deploy/nginx) and a minimal one with sendfile, on the same files."""
    shipped_dir, plain_dir = work / "shipped", work / "plain"
    shipped_dir.mkdir()
    plain_dir.mkdir()
    shipped = nginx_main_config(shipped_dir, storage, port)
    plain = plain_dir / "nginx.conf"
    plain.write_text(
        f"""
        user root; daemon off; worker_processes 1;
        pid {plain_dir}/nginx.pid; error_log {plain_dir}/error.log;
        events {{ worker_connections 1024; }}
        http {{
            access_log off; sendfile on; tcp_nopush on;
            client_body_temp_path {plain_dir}/body; proxy_temp_path {plain_dir}/proxy;
            fastcgi_temp_path {plain_dir}/fastcgi; uwsgi_temp_path {plain_dir}/uwsgi;
            scgi_temp_path {plain_dir}/scgi;
            server {{
                listen 127.0.0.1:{plain_port};
                location /generated-images/ {{ alias {storage}/; }}
                location = /healthz {{ return 200; }}
            }}
        }}
        """
    )
    processes = [
        subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(conf.parent)], stderr=subprocess.DEVNULL
        )
        for conf in (shipped, plain)
    ]
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz")
        _wait_for(f"http://127.0.0.1:{plain_port}/healthz")
        yield
    finally:
        for process in processes:
            process.terminate()
            process.wait()


def _report(scenarios: list[Scenario], nights: list[Night], size: Size, *, quick: bool) -> None:
    rows = ["| scenario | ours | baseline | ratio | target | met |", "|---|---|---|---|---|---|"]
    for s in scenarios:
        ours, base = s.median(s.ours), s.median(s.baseline)
        p99 = statistics.median(m.p99_ms for m in s.ours) if s.ours[0].p99_ms else None
        base_p99 = statistics.median(m.p99_ms for m in s.baseline) if s.baseline[0].p99_ms else None
        tail = f", p99 {p99:.0f} ms" if p99 else ""
        base_tail = f", p99 {base_p99:.0f} ms" if base_p99 else ""
        rows.append(
            f"| {s.name} | {ours:,.1f} {s.unit}{tail} | {base:,.1f} {s.unit}{base_tail} | "
            f"{s.ratio:.2f} | {s.target} | {'yes' if s.met else 'no'} |"
        )
    machine = f"{os.cpu_count()} cores, {platform.platform()}"
    mode = "quick" if quick else "full"
    print(
        f"\n{mode} run, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}, {size.rounds} round(s)"
    )
    print("\n".join(rows))
    print(
        f"\ngame nights ({PLAYERS} players x {ROUNDS} rounds a game; target: 120 games, "
        "0 errors, p95 <= 250 ms)\n"
    )
    print(
        "| games | paid generations / distinct prompts | errors | p95 | lookup p95 | "
        "upload p95 | listing p95 | picture p95 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for night in nights:
        ops = night.summary()["operations"]

        def p95(name: str, ops: dict = ops) -> str:
            return f"{ops[name]['p95_ms']:.0f} ms" if name in ops else "-"

        print(
            f"| {night.games} | {night.paid} / {len(night.prompts)} | "
            f"{sum(night.errors.values())} | {night.p(0.95):.0f} ms | {p95('lookup')} | "
            f"{p95('upload')} | {p95('listing')} | {p95('picture')} |"
        )
    passed = [night.games for night in nights if night.ok]
    print(f"\nlargest game night with 0 errors and p95 <= 250 ms: {max(passed, default=0)} games")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%S}{'-quick' if quick else ''}.json"
    path.write_text(
        json.dumps(
            {
                "quick": quick,
                "size": asdict(size),
                "scenarios": [asdict(s) | {"ratio": s.ratio, "met": s.met} for s in scenarios],
                "game_nights": [night.summary() for night in nights],
            },
            indent=2,
        )
    )
    print(f"\n(results: bench/results/{path.name})")


if __name__ == "__main__":
    main()
