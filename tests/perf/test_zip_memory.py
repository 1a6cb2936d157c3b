"""The zip of a shared game streams: the service's memory does not grow with the archive."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import pytest

from testkit.helpers import sidecar_process
from testkit.images import noise_png
from testkit.seeding import seed_images

pytestmark = pytest.mark.perf

PICTURES = 100


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_the_zip_of_a_100_picture_game_streams_in_bounded_memory(
    database, storage_dir, sidecar_environ, tmp_path
):
    seed_images(database.url, storage_dir, PICTURES, game_code="BIG", expired=False)
    picture = noise_png(660)  # ~1.3 MB, like an AI service's PNG
    for path in storage_dir.rglob("*.png"):
        path.write_bytes(picture)
    with sidecar_process("serve", sidecar_environ, tmp_path) as (process, base_url):
        request = urllib.request.Request(
            f"{base_url}/api/shares", data=b'{"game_code": "BIG"}', method="POST"
        )
        with urllib.request.urlopen(request) as answer:
            share_url = answer.read().decode().split('"url": "')[1].split('"')[0]
        before = _rss_bytes(process.pid)
        peak, done = [before], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_bytes(process.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        received = 0
        try:
            with urllib.request.urlopen(share_url + "/images.zip") as archive:
                while chunk := archive.read(1 << 16):
                    received += len(chunk)
        finally:
            done.set()
            sampler.join()
    growth = peak[0] - before
    print(
        f"zip of {received / 1e6:.0f} MB: RSS {before / 1e6:.0f} MB, growth {growth / 1e6:.1f} MB"
    )
    assert received > PICTURES * len(picture)
    assert growth < received / 4
