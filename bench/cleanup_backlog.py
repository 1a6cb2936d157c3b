"""Benchmark: clean a large backlog of expired images, against raw SQL + rm in the same run.

    python -m bench.cleanup_backlog [--images 100000]

Uses BENCH_DATABASE_URL (a server where it may create a database) or an embedded PostgreSQL.
Prints seconds, images/s and the cleanup process's peak RSS, and the same backlog removed by a
bare `DELETE` plus `rm -rf` as the baseline (what no bookkeeping at all would cost).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

from testkit.database import bench_database
from testkit.seeding import seed_images


def _sidecar_cleanup(url: str, storage: Path) -> tuple[float, int, str]:
    environ = {
        **os.environ,
        "DATABASE_URL": url,
        "IMAGE_STORAGE_BASE_DIR": str(storage),
        "IMAGE_ORPHAN_GRACE_SECONDS": "3600",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "image_sidecar", "cleanup"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    summary = process.stdout.read().decode() if process.stdout else ""
    if status != 0:
        raise SystemExit(f"cleanup failed: {summary}")
    return seconds, usage.ru_maxrss, summary.strip()


def _baseline(url: str, storage: Path) -> float:
    started = time.perf_counter()
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM generated_images WHERE expires_at <= now()")
    finally:
        conn.close()
    shutil.rmtree(storage)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    with bench_database(work) as url:
        storage = work / "images"
        seeded = time.perf_counter()
        seed_images(url, storage, args.images)
        print(f"seeded {args.images} expired images in {time.perf_counter() - seeded:.1f} s")
        seconds, peak_kb, summary = _sidecar_cleanup(url, storage)
        print(f"sidecar cleanup: {summary}")
        seed_images(url, storage, args.images)
        baseline = _baseline(url, storage)
        rate = args.images / seconds
        print(f"images:              {args.images}")
        print(f"sidecar cleanup:     {seconds:.2f} s  ({rate:,.0f} images/s)")
        print(f"peak RSS (cleanup):  {peak_kb / 1024:.1f} MiB")
        print(f"baseline DELETE+rm:  {baseline:.2f} s  ({args.images / baseline:,.0f} images/s)")
        print(f"ratio sidecar/baseline: {seconds / baseline:.1f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
