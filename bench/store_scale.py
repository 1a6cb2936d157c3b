"""The store at N and at 10·N images: what the recurring work and the requests cost as the store
grows (`python -m bench`: 100,000 and 1,000,000 images; `--quick`: 10,000 and 100,000).

Each store is seeded in the shape of real games: 30 pictures a game (3 rounds of 10 players),
30% reuses (the bytes of an earlier picture), 70% with a cache entry, one made rendition each,
expiry spread over 30 days with 1% expired. Rows are written by SQL, files as hard links of one
picture and one thumbnail (a million files for the price of a million links). A sidecar serves
each store; the two are measured alternately, and each row prints cost(10·N) / cost(N).

Work that is the day's by design is measured per unit of work: the cleanup with 1% expired per
thousand images deleted (10·N deletes ten times as many), the audit per file walked (it walks
the whole store, monthly), the scrub per file of a fixed slice (its scheduled slices are a
cycle's share of the store: 1/30 of it daily). Everything else is measured whole.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg2

from bench.measure import multipart
from bench.workloads import running
from image_sidecar import db
from image_sidecar.config import RetentionSettings
from image_sidecar.db import stats as stats_rows
from image_sidecar.images.pool import ImageProcessor
from image_sidecar.lifecycle.audit import run_audit
from image_sidecar.lifecycle.cleanup import run_cleanup
from image_sidecar.lifecycle.scrub import run_scrub
from image_sidecar.storage.filesystem import FilesystemBlobStore
from testkit.database import bench_database
from testkit.helpers import free_port, image_fields
from testkit.images import noise_png
from testkit.seeding import seed_like_games

GOAL = 1.5
REQUESTS = 30  # per operation and store, alternating between the stores


@dataclass
class Store:
    """A seeded store and the sidecar serving it."""

    images: int
    url: str
    storage: Path
    base: str
    cached: dict  # a picture uploaded through the sidecar: its prompt hits the cache
    game_code: str  # a seeded game, for listings


@dataclass(frozen=True)
class ScaleRow:
    name: str
    unit: str
    small: float
    large: float

    @property
    def ratio(self) -> float:
        return self.large / self.small if self.small else float("nan")

    @property
    def met(self) -> bool:
        return self.ratio <= GOAL


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def _request_rows(small: Store, large: Store) -> list[ScaleRow]:
    """Each operation alternately on both stores; the median milliseconds of each."""

    def operations(store: Store, session: aiohttp.ClientSession) -> dict[str, Callable]:
        cached = store.cached

        async def ok(response_context: object, status: int) -> None:
            async with response_context as response:  # type: ignore[attr-defined]
                if response.status != status:
                    raise SystemExit(f"{response.status}: {await response.text()}")
                await response.read()

        return {
            "GET /api/stats": lambda: ok(session.get("/api/stats"), 200),
            "round listing": lambda: ok(
                session.get(f"/api/games/{store.game_code}/rounds/2/images"), 200
            ),
            "cache lookup (a hit)": lambda: ok(
                session.post(
                    "/api/cache/lookup",
                    json={"prompt": cached["prompt"], "art_style": cached["art_style"]},
                ),
                200,
            ),
            "hit registration": lambda: ok(
                session.post(
                    f"/api/cache/{cached['prompt_hash']}/hits",
                    json=image_fields(
                        game_code=f"HIT{random.randrange(10**9)}",
                        completed_sentence=cached["prompt"],
                        art_style=cached["art_style"],
                    ),
                ),
                201,
            ),
            "upload of a 150 KB picture": lambda: ok(
                session.post(
                    "/api/images",
                    data=multipart(
                        image_fields(game_code=f"UP{random.randrange(10**9)}"),
                        noise_png(222, seed=random.randrange(10**6)),
                    ),
                ),
                201,
            ),
        }

    async with (
        aiohttp.ClientSession(small.base) as s_small,
        aiohttp.ClientSession(large.base) as s_large,
    ):
        ops_small, ops_large = operations(small, s_small), operations(large, s_large)
        rows = []
        for name in ops_small:
            times: tuple[list[float], list[float]] = ([], [])
            for _ in range(REQUESTS):
                times[0].append(await _timed(ops_small[name]))
                times[1].append(await _timed(ops_large[name]))
            rows.append(
                ScaleRow(name, "ms", statistics.median(times[0]), statistics.median(times[1]))
            )
    return rows


async def _gauges(small: Store, large: Store) -> ScaleRow:
    """The gauges' read (the fold of what changed, then the totals), as a replica makes it."""
    pools = [await db.create_pool(s.url, size=1) for s in (small, large)]
    try:
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(REQUESTS):
            for pool, into in zip(pools, times, strict=True):

                async def read(pool: db.Pool = pool) -> None:
                    async with db.cursor(pool) as cur:
                        await stats_rows.storage_totals(cur)

                into.append(await _timed(read))
        return ScaleRow("the gauges' read", "ms", *(statistics.median(t) for t in times))
    finally:
        for pool in pools:
            await db.close_pool(pool)


async def _jobs(store: Store, slice_images: int) -> dict[str, float]:
    """The recurring jobs on one store, in the order a night runs them."""
    pool = await db.create_pool(store.url, size=2, timeout=60)
    files = FilesystemBlobStore(store.storage)
    processor = ImageProcessor(max_pixels=40_000_000, workers=1, formats=("webp",))
    settings = RetentionSettings()
    try:
        started = time.perf_counter()
        audit = await run_audit(pool, files, grace_seconds=0, files_per_second=0, dry_run=True)
        audit_seconds = time.perf_counter() - started
        assert audit.orphans_found == 0, audit.orphan_keys
        started = time.perf_counter()
        scrub = await run_scrub(
            pool,
            processor=processor,
            store=files,
            max_bytes_per_second=0,
            cycle_days=max(1, round(store.images / slice_images)),
        )
        scrub_seconds = time.perf_counter() - started
        assert not scrub.unrecoverable, scrub.as_dict()
        assert not scrub.damaged, scrub.as_dict()
        started = time.perf_counter()
        expired = await run_cleanup(pool, files, settings)
        expired_seconds = time.perf_counter() - started
        assert expired.outcome == "success", expired.reason
        started = time.perf_counter()
        nothing = await run_cleanup(pool, files, settings)
        nothing_seconds = time.perf_counter() - started
        assert nothing.images_deleted == 0
    finally:
        processor.close()
        await db.close_pool(pool)
    print(
        f"  {store.images:,} images: cleanup of {expired.images_deleted:,} expired in "
        f"{expired_seconds:.1f} s, again with nothing expired {nothing_seconds:.2f} s; audit "
        f"walk of {audit.files_checked:,} files in {audit_seconds:.1f} s; scrub slice of "
        f"{scrub.files_checked:,} files in {scrub_seconds:.1f} s",
        file=sys.stderr,
    )
    return {
        "cleanup_ms_per_1000_deleted": expired_seconds * 1e6 / max(expired.images_deleted, 1),
        "cleanup_deleted": expired.images_deleted,
        "cleanup_seconds": expired_seconds,
        "cleanup_nothing_seconds": nothing_seconds,
        "audit_us_per_file": audit_seconds * 1e6 / max(audit.files_checked, 1),
        "audit_seconds": audit_seconds,
        "scrub_us_per_file": scrub_seconds * 1e6 / max(scrub.files_checked, 1),
    }


def table_sizes(url: str) -> dict[str, int]:
    """Bytes of each of the sidecar's large tables with its indexes and TOAST."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                """
                SELECT relname, pg_total_relation_size(oid) FROM pg_class
                WHERE relname IN ('generated_images', 'image_renditions', 'image_cache',
                                  'games', 'game_rounds', 'usage_totals')
                ORDER BY 2 DESC
                """
            )
            return dict(cur.fetchall())
    finally:
        conn.close()


def _prepared(stack: ExitStack, work: Path, images: int, slice_images: int) -> Store:
    folder = work / f"scale-{images}"
    storage = folder / "images"
    storage.mkdir(parents=True)
    url = stack.enter_context(bench_database(folder))
    seed_like_games(url, storage, images, work, real_files=slice_images)
    sizes = ", ".join(f"{name} {size / 2**20:,.0f} MiB" for name, size in table_sizes(url).items())
    print(f"  {images:,} images: {sizes}", file=sys.stderr)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = {
        **os.environ,
        "DATABASE_URL": url,
        "IMAGE_STORAGE_BASE_DIR": str(storage),
        "IMAGE_SIDECAR_PORT": str(port),
        "IMAGE_SIDECAR_WORKERS": "1",
        "IMAGE_CLEANUP_ENABLED": "false",
        "IMAGE_SCRUB_CRON": "",
        "IMAGE_AUDIT_CRON": "",
    }
    command = [sys.executable, "-m", "image_sidecar", "serve"]
    stack.enter_context(running(command, environ, base + "/healthz", folder / "sidecar.log"))
    cached = asyncio.run(_upload_one(base))
    return Store(images, url, storage, base, cached, game_code=f"S{images // 30 // 2:X}")


async def _upload_one(base: str) -> dict:
    fields = image_fields(game_code="CACHED", completed_sentence="A cat on a skateboard")
    async with (
        aiohttp.ClientSession(base) as session,
        session.post("/api/images", data=multipart(fields, noise_png(222, seed=3))) as response,
    ):
        if response.status != 201:
            raise SystemExit(await response.text())
        return await response.json()


def measure(work: Path, images: int) -> list[ScaleRow]:
    """The rows of the scale table: the store at `images` and at ten times as many."""
    slice_images = min(2_000, images // 10)
    with ExitStack() as stack:
        print(f"seeding stores of {images:,} and {10 * images:,} images...", file=sys.stderr)
        small = _prepared(stack, work, images, slice_images)
        large = _prepared(stack, work, 10 * images, slice_images)
        rows = [asyncio.run(_gauges(small, large)), *asyncio.run(_request_rows(small, large))]
        jobs = [asyncio.run(_jobs(store, slice_images)) for store in (small, large)]
    rows += [
        ScaleRow(
            "nightly cleanup, 1% expired, per 1,000 deleted",
            "ms",
            jobs[0]["cleanup_ms_per_1000_deleted"],
            jobs[1]["cleanup_ms_per_1000_deleted"],
        ),
        ScaleRow(
            "nightly cleanup, nothing expired",
            "ms",
            jobs[0]["cleanup_nothing_seconds"] * 1000,
            jobs[1]["cleanup_nothing_seconds"] * 1000,
        ),
        ScaleRow(
            "audit walk, per file", "µs", jobs[0]["audit_us_per_file"], jobs[1]["audit_us_per_file"]
        ),
        ScaleRow(
            f"scrub slice of {slice_images:,} images, per file",
            "µs",
            jobs[0]["scrub_us_per_file"],
            jobs[1]["scrub_us_per_file"],
        ),
    ]
    for name, n in (("N", 0), ("10·N", 1)):
        print(
            f"  {name}: cleanup {jobs[n]['cleanup_seconds']:.1f} s for "
            f"{jobs[n]['cleanup_deleted']:,.0f} deleted; audit {jobs[n]['audit_seconds']:.1f} s",
            file=sys.stderr,
        )
    return rows


def table(rows: list[ScaleRow], images: int) -> list[str]:
    sizes = f"at {images:,} (N) and {10 * images:,} (10·N) images"
    lines = [
        f"| {sizes} | N | 10·N | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.small:,.2f} {row.unit} | {row.large:,.2f} {row.unit} | "
            f"{row.ratio:.2f} | <= {GOAL} | {'yes' if row.met else 'no'} |"
        )
    return lines
