"""Every hot path of the sidecar against a baseline measured in the same run.

    python -m bench            # the full run: realistic data, 3 alternating rounds, 10 s loads
    python -m bench --quick    # CI: small data, one round, 2 s loads (numbers, not targets)
    python -m bench --only scale [--quick]   # the store at N and 10·N images alone

Starts what it needs on loopback: a PostgreSQL (embedded, or BENCH_DATABASE_URL's server),
`image-sidecar serve`, the baselines' bare aiohttp app (bench/baselines.py), nginx with the
shipped config and with a minimal one; wrk (Debian's `wrk`) is the load generator. Ours and the
baseline run alternately, round after round; the table shows medians, the ratio, the target and
whether it is met, and the machine's load before each run goes to the JSON under bench/results/.

A scenario is a row of SCENARIOS: its name, unit, target ratio, and how ours and the baseline
run, given the run's context (`Run`), which prepares what a scenario needs on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bench import data_safety, likeness, nights, store_scale, upload_profile, workloads
from bench.game_night import Stage
from bench.measure import FULL, POST_BODY, QUICK, RANDOM_PATHS, Measure, Scenario, Size, alternate
from bench.measure import wrk as wrk_load
from bench.report import report
from testkit.database import bench_database, postmaster_pid
from testkit.helpers import free_port
from testkit.images import ORIGINAL_FORMATS, ai_pictures, as_originals, noise_png

CONNECTIONS = 32


@dataclass
class Run:
    """One benchmark run's context: the sidecar, the bare baselines, the database, the files.
    What only some scenarios need (nginx, seeded rows, wrk scripts) is made on first use."""

    size: Size
    work: Path
    storage: Path
    url: str
    base: str  # the sidecar
    bare: str  # the baselines' bare aiohttp app
    stack: ExitStack
    records: list[dict]  # the pictures uploaded first, served by the static scenarios
    sidecar_pid: int
    environ: dict[str, str]  # the sidecar's

    @cached_property
    def traced(self) -> str:
        """The same sidecar with tracing on at its default sampler (these requests come without
        a caller's trace: one in ten is traced), exporting to the baselines' app as collector."""
        return self._traced_sidecar({})

    @cached_property
    def traced_always(self) -> str:
        """Tracing on for every request (as under a game server that traces every call)."""
        return self._traced_sidecar({"OTEL_TRACES_SAMPLER": "always_on"})

    def _traced_sidecar(self, extra: dict[str, str]) -> str:
        port = free_port()
        environ = {
            **self.environ,
            **extra,
            "IMAGE_SIDECAR_PORT": str(port),
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.bare,
            "OTEL_SERVICE_NAME": "image-sidecar-bench",
        }
        base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "image_sidecar", "serve"]
        log = self.work / f"traced-{port}.log"
        self.stack.enter_context(workloads.running(command, environ, base + "/healthz", log))
        asyncio.run(workloads.uploads(base, self.picture, 4, 1))  # its picture processes warm
        return base

    def script(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text)
        return path

    def wrk(self, url: str, script: Path) -> Measure:
        return wrk_load(url, self.size.seconds, CONNECTIONS, script)

    @cached_property
    def random_pictures(self) -> Path:
        paths = self.script("paths.txt", "\n".join(r["image_url"] for r in self.records) + "\n")
        return self.script("random.lua", RANDOM_PATHS % paths)

    @cached_property
    def nginx(self) -> tuple[str, str, int]:
        """The shipped nginx config and a minimal sendfile one, serving the same files; the
        shipped one's pid."""
        shipped, plain = free_port(), free_port()
        sidecar_port = int(self.base.rpartition(":")[2])
        pid = self.stack.enter_context(
            workloads.nginx(self.work, self.storage, shipped, plain, sidecar_port)
        )
        return f"http://127.0.0.1:{shipped}", f"http://127.0.0.1:{plain}", pid

    @cached_property
    def pictures(self) -> list[bytes]:
        return ai_pictures(12 if self.size.rounds == 1 else 24)

    @cached_property
    def originals(self) -> dict[str, list[bytes]]:
        """The pictures as the AI services return them in each format."""
        return {fmt: as_originals(self.pictures, fmt) for fmt in ORIGINAL_FORMATS}

    @cached_property
    def blocklist(self) -> likeness.LookalikeBlocklist:
        return likeness.full_blocklist()

    @cached_property
    def safety_stock(self) -> data_safety.Stock:
        """A game of its own, in a database and folder of its own (bench/data_safety.py)."""
        url = self.stack.enter_context(bench_database(self.work / "safety"))
        pictures, side = (100, 200_000) if self.size.rounds == 1 else (1_000, 1_300_000)
        return data_safety.stock(url, self.work / "safety", pictures, side)

    @cached_property
    def random_rounds(self) -> Path:
        rounds = workloads.seed_listing(self.url, self.size.listing_rows)
        lines = "\n".join(f"/api/games/LIST/rounds/{n}/images" for n in range(rounds))
        return self.script("listing.lua", RANDOM_PATHS % self.script("rounds.txt", lines + "\n"))

    @property
    def cached(self) -> dict:
        return self.records[0]

    @cached_property
    def lookup_body(self) -> Path:
        body = {"prompt": self.cached["prompt"], "art_style": self.cached["art_style"]}
        return self.script("lookup.lua", POST_BODY % json.dumps(body))

    @cached_property
    def entry_body(self) -> Path:
        return self.script(
            "entry.lua", POST_BODY % json.dumps({"prompt_hash": self.cached["prompt_hash"]})
        )

    @cached_property
    def picture(self) -> bytes:
        return noise_png(222)  # a real PNG (uploads are decoded), about 150 KB


@dataclass(frozen=True)
class Plan:
    """A row of the table: `name` may name the run's sizes (`{size.listing_rows:,}`)."""

    name: str
    unit: str
    goal: float
    ours: Callable[[Run], Measure]
    baseline: Callable[[Run], Measure]
    higher_is_better: bool = True


def _uploads(concurrency: int) -> Plan:
    return Plan(
        f"upload 150 KB, concurrency {concurrency}",
        "img/s",
        0.6,
        lambda r: asyncio.run(workloads.uploads(r.base, r.picture, r.size.uploads, concurrency)),
        lambda r: asyncio.run(
            workloads.baseline_uploads(r.url, r.storage, r.picture, r.size.uploads, concurrency)
        ),
    )


def _tracing(how: str, traced: Callable[[Run], str]) -> tuple[Plan, Plan]:
    """An upload and a lookup on a sidecar with tracing on, against the one without."""
    return (
        Plan(
            f"upload 150 KB, concurrency 1: {how} vs off",
            "img/s",
            0.9,
            lambda r: asyncio.run(workloads.uploads(traced(r), r.picture, r.size.uploads, 1)),
            lambda r: asyncio.run(workloads.uploads(r.base, r.picture, r.size.uploads, 1)),
        ),
        Plan(
            f"cache lookup (a hit), 32 conn.: {how} vs off",
            "req/s",
            0.9,
            lambda r: r.wrk(traced(r) + "/api/cache/lookup", r.lookup_body),
            lambda r: r.wrk(r.base + "/api/cache/lookup", r.lookup_body),
        ),
    )


SCENARIOS: tuple[Plan, ...] = (
    Plan(
        "static GET, random 150 KB images",
        "req/s",
        0.9,
        lambda r: r.wrk(r.base, r.random_pictures),
        lambda r: r.wrk(r.bare, r.random_pictures),
    ),
    Plan(
        "nginx: shipped config vs a minimal sendfile one",
        "req/s",
        0.95,
        lambda r: r.wrk(r.nginx[0], r.random_pictures),
        lambda r: r.wrk(r.nginx[1], r.random_pictures),
    ),
    Plan(
        "round listing, {size.listing_rows:,} rows, 32 conn.",
        "req/s",
        0.85,
        lambda r: r.wrk(r.base, r.random_rounds),
        lambda r: r.wrk(r.bare, r.random_rounds),
    ),
    Plan(
        "cache lookup (a hit), 32 conn.",
        "req/s",
        0.85,
        lambda r: r.wrk(r.base + "/api/cache/lookup", r.lookup_body),
        lambda r: r.wrk(r.bare + "/api/cache/lookup", r.entry_body),
    ),
    Plan(
        "hit registration, 50 clients, one prompt",
        "ops/s",
        0.5,
        lambda r: asyncio.run(workloads.register_hits(r.base, r.cached, r.size.hits)),
        lambda r: asyncio.run(
            workloads.counter_updates(r.url, r.cached["prompt_hash"], r.size.hits)
        ),
    ),
    _uploads(16),
    _uploads(1),
    *_tracing("tracing on (default sampler)", lambda r: r.traced),
    *_tracing("every request traced", lambda r: r.traced_always),
    Plan(
        "an upload's picture work with its perceptual hash vs without",
        "img/s",
        0.93,  # = 0.95 of an upload (bench/likeness.py)
        lambda r: likeness.with_hash(r.pictures),
        lambda r: likeness.without_hash(r.pictures),
    ),
    Plan(
        "the same with the look-alike check, {likeness.BLOCKED_HASHES:,} blocked, vs without",
        "img/s",
        0.93,
        lambda r: likeness.with_check(r.pictures, r.blocklist),
        lambda r: likeness.with_hash(r.pictures),
    ),
    Plan(
        "scrub of a game's files vs sha256sum of them",
        "MiB/s",
        0.8,
        lambda r: data_safety.scrub(r.safety_stock),
        lambda r: data_safety.sha256sum(r.safety_stock),
    ),
    Plan(
        "export of a game vs zip -0 of its files",
        "MiB/s",
        0.5,
        lambda r: data_safety.export(r.safety_stock),
        lambda r: data_safety.zip_files(r.safety_stock),
    ),
    Plan(
        "import of that game (verified, then written) vs unzip",
        "MiB/s",
        0.5,
        lambda r: data_safety.import_(r.safety_stock),
        lambda r: data_safety.unzip(r.safety_stock),
    ),
    Plan(
        "cleanup of {size.cleanup_images:,} expired images on disk",
        "s",
        1.2,
        lambda r: workloads.timed_cleanup(r.url, r.work, r.size.cleanup_images, ours=True),
        lambda r: workloads.timed_cleanup(r.url, r.work, r.size.cleanup_images, ours=False),
        higher_is_better=False,
    ),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, one round (CI)")
    parser.add_argument(
        "--only",
        choices=["scale", "nights"],
        help="run only the store at N and 10·N images, or only the game nights",
    )
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    if args.only == "scale":
        work = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
        try:
            rows = store_scale.measure(work, size.scale_images)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print("\n".join(store_scale.table(rows, size.scale_images)))
        return
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs {tool} (Debian: apt-get install {tool})")
    work = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    storage = work / "images"
    storage.mkdir()
    with ExitStack() as stack:
        url = stack.enter_context(bench_database(work))
        port, bare_port = free_port(), free_port()
        base, bare = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        environ = {
            **os.environ,
            "DATABASE_URL": url,
            "IMAGE_STORAGE_BASE_DIR": str(storage),
            "IMAGE_SIDECAR_PORT": str(port),
            "IMAGE_CLEANUP_ENABLED": "false",
            # One process against the baselines' one process: the ratios compare like with like.
            "IMAGE_SIDECAR_WORKERS": "1",
        }
        sidecar = [sys.executable, "-m", "image_sidecar", "serve"]
        baselines = [sys.executable, "-m", "bench.baselines", url, str(storage), str(bare_port)]
        sidecar_pid = stack.enter_context(
            workloads.running(sidecar, environ, base + "/healthz", work / "sidecar.log")
        )
        stack.enter_context(
            workloads.running(baselines, dict(os.environ), bare + "/healthz", work / "bare.log")
        )
        # The nights play against the sidecar as it ships: a worker per core.
        night_port = free_port()
        night_base = f"http://127.0.0.1:{night_port}"
        night_environ = {**environ, "IMAGE_SIDECAR_PORT": str(night_port)}
        del night_environ["IMAGE_SIDECAR_WORKERS"]
        night_pid = stack.enter_context(
            workloads.running(sidecar, night_environ, night_base + "/healthz", work / "nights.log")
        )
        print(f"uploading {size.images} distinct 150 KB pictures...", file=sys.stderr)
        records = asyncio.run(workloads.upload_pictures(base, size.images))
        os.sync()
        run = Run(size, work, storage, url, base, bare, stack, records, sidecar_pid, environ)
        scenarios = []
        for plan in SCENARIOS if args.only is None else ():
            name = plan.name.format(size=size, likeness=likeness)
            print(f"{name}...", file=sys.stderr)
            scenario = Scenario(name, plan.unit, plan.higher_is_better, plan.goal)
            scenarios.append(
                alternate(
                    scenario,
                    size.rounds,
                    lambda p=plan: p.ours(run),
                    lambda p=plan: p.baseline(run),
                )
            )
        print("the upload's picture work, step by step...", file=sys.stderr)
        steps = upload_profile.profile(run.originals)
        print("CPU per operation...", file=sys.stderr)
        count = 10 if args.quick else 60
        cpu = asyncio.run(nights.cpu_per_operation(base, sidecar_pid, run.originals, count))
        (work / "nights").mkdir()
        nginx_port = free_port()
        nginx_pid = stack.enter_context(
            workloads.nginx(work / "nights", storage, nginx_port, free_port(), night_port)
        )
        stages = {
            "embedded": Stage("embedded", api=night_base, pictures=night_base),
            "deployed": Stage(
                "deployed", api=night_base, pictures=f"http://127.0.0.1:{nginx_port}"
            ),
        }
        processes = nights.Processes(night_pid, postmaster_pid(url), nginx_pid)
        ladders = nights.QUICK_LADDERS if args.quick else nights.FULL_LADDERS
        played = nights.play_ladders(
            ladders, stages, processes, run.originals, lambda line: print(line, file=sys.stderr)
        )
    scale = store_scale.measure(work, size.scale_images) if args.only is None else []
    shutil.rmtree(work, ignore_errors=True)
    report(scenarios, played, cpu, steps, size, scale, quick=args.quick)


if __name__ == "__main__":
    main()
