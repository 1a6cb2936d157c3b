"""Benchmark: what renditions save on a judge screen, what they cost an upload, and how fast
they are made, each against a baseline measured in the same run.

    python -m bench.renditions [--uploads 40] [--rounds 3]

1. Bytes of a judge screen (8 pictures) as thumbs and as large renditions vs the originals, on
   generated 1024x1024 pictures with photographic detail (gradients, a fractal, soft clouds and
   grain: 2.5-3 MB as PNG, like an AI service's).
2. Upload latency p50/p99 of one such PNG through HTTP, with renditions vs the same sidecar with
   IMAGE_RENDITION_FORMATS empty, alternating, concurrency 1.
3. Renditions per second on one core: the sidecar's Pillow code (thumb and large, WebP) vs
   libvips' `vipsthumbnail` making the same two WebP files (Debian: libvips-tools).

Uses BENCH_DATABASE_URL (a server where it may create a database) or an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web
from PIL import Image, ImageChops, ImageFilter

from image_sidecar.app import create_app
from image_sidecar.config import load_config
from image_sidecar.images.decoding import inspect, rendition_formats
from image_sidecar.log import configure_logging
from testkit.database import bench_database
from testkit.helpers import free_port, image_fields

JUDGE_SCREEN = 8
MAX_PIXELS = 40_000_000


def picture(seed: int, side: int = 1024) -> bytes:
    """A PNG with the detail of a generated picture (not flat colours, which compress away)."""
    rnd = random.Random(seed)
    extent = (-2 + rnd.random(), -1.2, 0.6 + rnd.random(), 1.2)
    base = Image.merge(
        "RGB",
        [
            Image.linear_gradient("L").resize((side, side)).rotate(rnd.randint(0, 359)),
            Image.radial_gradient("L").resize((side, side)),
            Image.effect_mandelbrot((side, side), extent, 100),
        ],
    )
    clouds = Image.effect_noise((side // 8, side // 8), 90).resize(
        (side, side), Image.Resampling.BICUBIC
    )
    soft = Image.merge("RGB", [clouds, clouds.rotate(90), clouds.rotate(180)])
    grain = Image.effect_noise((side, side), 18)
    image = ImageChops.add(
        ImageChops.blend(base, soft, 0.4), Image.merge("RGB", [grain] * 3), offset=-60
    )
    buffer = io.BytesIO()
    image.filter(ImageFilter.DETAIL).save(buffer, format="PNG")
    return buffer.getvalue()


def judge_screen_bytes(pictures: list[bytes]) -> None:
    totals: dict[str, int] = {}
    for data in pictures:
        for rendition in inspect(data, MAX_PIXELS, rendition_formats()).renditions:
            key = f"{rendition.name} {rendition.format}"
            totals[key] = totals.get(key, 0) + len(rendition.data)
    original = sum(len(data) for data in pictures)
    print(f"\n1. judge screen of {len(pictures)} pictures: originals {original / 1e6:.1f} MB")
    goals = {"thumb": 1 / 20, "large": 1 / 5}
    for key, size in sorted(totals.items()):
        goal = goals[key.split()[0]]
        verdict = "meets" if size / original <= goal else "misses"
        print(
            f"   {key:<11} {size / 1e3:8.0f} kB  1/{original / size:5.1f} of the originals "
            f"({verdict} the goal of 1/{1 / goal:.0f})"
        )


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def _upload(session: aiohttp.ClientSession, base: str, data: bytes) -> float:
    form = aiohttp.FormData()
    for name, value in image_fields(game_code=f"B{uuid.uuid4().hex[:8]}").items():
        form.add_field(name, value)
    form.add_field("image", io.BytesIO(data), filename="picture.png")
    started = time.perf_counter()
    async with session.post(f"{base}/api/images", data=form) as response:
        await response.read()
        assert response.status == 201, response.status
    return time.perf_counter() - started


async def upload_latency(database_url: str, data: bytes, uploads: int) -> None:
    storage = Path(tempfile.mkdtemp(prefix="bench-renditions-"))
    variants = {"with renditions": "webp,avif", "without (baseline)": ""}
    servers = {}
    for name, formats in variants.items():
        config = load_config(
            {
                "DATABASE_URL": database_url,
                "IMAGE_STORAGE_BASE_DIR": str(storage / name.split()[0]),
                "IMAGE_RENDITION_FORMATS": formats,
                "IMAGE_CLEANUP_ENABLED": "false",
            }
        )
        servers[name] = await _serve(create_app(config))
    timings: dict[str, list[float]] = {name: [] for name in variants}
    try:
        async with aiohttp.ClientSession() as session:
            for _, base in servers.values():
                await _upload(session, base, data)  # warm up
            for _ in range(uploads):  # alternating, so both see the same machine
                for name, (_, base) in servers.items():
                    timings[name].append(await _upload(session, base, data))
    finally:
        for runner, _ in servers.values():
            await runner.cleanup()
        shutil.rmtree(storage, ignore_errors=True)
    print(f"\n2. upload of a {len(data) / 1e6:.1f} MB 1024x1024 PNG, {uploads} each, alternating")
    medians = {}
    for name, seconds in timings.items():
        ordered = sorted(seconds)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        medians[name] = statistics.median(ordered)
        print(f"   {name:<19} p50 {medians[name] * 1e3:6.0f} ms   p99 {p99 * 1e3:6.0f} ms")
    with_, without = medians.values()
    print(f"   ratio (p50 with / without): {with_ / without:.2f}")


def renditions_per_second(pictures: list[bytes], rounds: int) -> None:
    vips = shutil.which("vipsthumbnail")
    work = Path(tempfile.mkdtemp(prefix="bench-vips-"))
    paths = []
    for number, data in enumerate(pictures):
        path = work / f"picture-{number}.png"
        path.write_bytes(data)
        paths.append(path)
    pillow: list[float] = []
    baseline: list[float] = []
    for _ in range(rounds):  # alternating rounds
        started = time.perf_counter()
        for data in pictures:
            inspect(data, MAX_PIXELS, ("webp",))
        pillow.append(len(pictures) / (time.perf_counter() - started))
        if vips:
            started = time.perf_counter()
            for path in paths:
                for side, name in ((256, "thumb"), (1024, "large")):
                    subprocess.run(
                        [vips, str(path), "-s", str(side), "-o", f"%s.{name}.webp[Q=80]"],
                        check=True,
                    )
            baseline.append(len(pictures) / (time.perf_counter() - started))
    shutil.rmtree(work, ignore_errors=True)
    print("\n3. pictures rendered per second on one core (thumb and large, WebP)")
    sidecar = statistics.median(pillow)
    print(f"   sidecar (Pillow, decode + both renditions + placeholder): {sidecar:5.2f}/s")
    if not baseline:
        print("   vipsthumbnail not installed (Debian: apt-get install libvips-tools)")
        return
    vips_rate = statistics.median(baseline)
    print(f"   vipsthumbnail (two runs per picture):                      {vips_rate:5.2f}/s")
    print(f"   ratio: {sidecar / vips_rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_logging(json_lines=False, level=logging.WARNING)  # no line per request
    pictures = [picture(seed) for seed in range(JUDGE_SCREEN)]
    judge_screen_bytes(pictures)
    work = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    with bench_database(work) as url:
        asyncio.run(upload_latency(url, pictures[0], args.uploads))
    shutil.rmtree(work, ignore_errors=True)
    renditions_per_second(pictures, args.rounds)


if __name__ == "__main__":
    main()
