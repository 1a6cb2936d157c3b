"""The workloads of `python -m bench`: ours (the sidecar) and each baseline's."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import psycopg2

from bench.measure import Measure, in_parallel, multipart, post_all
from testkit.helpers import image_fields, wait_for
from testkit.images import noise_png
from testkit.nginx import nginx_main_config
from testkit.seeding import seed_images


@contextmanager
def running(command: list[str], environ: dict[str, str], health: str, log: Path) -> Iterator[int]:
    """The process started and answering `health` (its stderr in `log`): its pid."""
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        try:
            wait_for(health, seconds=60)
        except SystemExit:
            tail = "\n".join(log.read_text().splitlines()[-20:])
            raise SystemExit(f"{' '.join(command[-2:])} did not start:\n{tail}") from None
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


async def upload_pictures(base: str, count: int) -> list[dict]:
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


def seed_listing(url: str, rows: int) -> int:
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


async def register_hits(base: str, cached: dict, hits: int) -> Measure:
    def hit() -> Callable[[aiohttp.ClientSession], object]:
        fields = image_fields(
            game_code=f"HIT{random.randrange(10**6)}",
            completed_sentence=cached["prompt"],
            art_style=cached["art_style"],
        )
        return lambda s: s.post(f"/api/cache/{cached['prompt_hash']}/hits", json=fields)

    return await post_all(base, [hit() for _ in range(hits)], 50)


async def counter_updates(url: str, key: str, count: int) -> Measure:
    """The baseline of a hit: one atomic UPDATE of the popular row, 50 clients at once."""
    import aiopg

    async with aiopg.create_pool(url, minsize=10, maxsize=10, enable_hstore=False) as pool:

        async def update() -> None:
            async with pool.acquire() as conn, conn.cursor() as cur:
                await cur.execute(
                    "UPDATE image_cache SET hit_count = hit_count + 1 WHERE prompt_hash = %s",
                    (key,),
                )

        return await in_parallel(count, 50, update)


async def uploads(base: str, picture: bytes, count: int, concurrency: int) -> Measure:
    def upload() -> Callable[[aiohttp.ClientSession], object]:
        fields = image_fields(game_code=f"UP{random.randrange(10**6)}")
        return lambda s: s.post("/api/images", data=multipart(fields, picture))

    return await post_all(base, [upload() for _ in range(count)], concurrency)


async def baseline_uploads(
    url: str, storage: Path, picture: bytes, count: int, concurrency: int
) -> Measure:
    """What an upload cannot do without: decode it and make the renditions made at upload
    (the shipped default: the large WebP) with the same library, settings and pool size, write
    the files (temp, fsync, rename), one INSERT."""
    import aiopg

    from image_sidecar.images.pool import ImageProcessor, made_at_upload

    processor = ImageProcessor(
        max_pixels=40_000_000,
        workers=2,
        formats=("webp", "avif"),
        made_at_upload=made_at_upload(("large.webp",)),
    )
    target = storage / "baseline"
    target.mkdir(exist_ok=True)

    def write(name: str, data: bytes) -> None:
        temp = target / f".tmp-{name}"
        with temp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        temp.rename(target / name)

    try:
        async with aiopg.create_pool(url, minsize=1, maxsize=10, enable_hstore=False) as pool:
            async with pool.acquire() as conn, conn.cursor() as cur:
                await cur.execute(
                    "CREATE TABLE IF NOT EXISTS bench_baseline_rows "
                    "(row_id bigserial PRIMARY KEY, sha256 text NOT NULL)"
                )

            async def upload() -> None:
                image = await processor.inspect(picture)
                name = uuid.uuid4().hex
                await asyncio.to_thread(write, name + ".png", picture)
                for made in image.renditions:
                    await asyncio.to_thread(write, f"{name}.{made.name}.{made.format}", made.data)
                async with pool.acquire() as conn, conn.cursor() as cur:
                    await cur.execute(
                        "INSERT INTO bench_baseline_rows (sha256) VALUES (%s)",
                        (image.sha256,),
                    )

            return await in_parallel(count, concurrency, upload)
    finally:
        processor.close()
        shutil.rmtree(target, ignore_errors=True)


def timed_cleanup(url: str, work: Path, count: int, *, ours: bool) -> Measure:
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
def nginx(
    work: Path, storage: Path, port: int, plain_port: int, sidecar_port: int
) -> Iterator[int]:
    """The shipped config (deploy/nginx, asking the sidecar on `sidecar_port` for renditions
    not made yet) and a minimal one with sendfile, on the same files: the shipped one's pid."""
    shipped_dir, plain_dir = work / "shipped", work / "plain"
    shipped_dir.mkdir()
    plain_dir.mkdir()
    shipped = nginx_main_config(shipped_dir, storage, port, sidecar_port=sidecar_port)
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
        wait_for(f"http://127.0.0.1:{port}/healthz")
        wait_for(f"http://127.0.0.1:{plain_port}/healthz")
        yield processes[0].pid
    finally:
        for process in processes:
            process.terminate()
            process.wait()
