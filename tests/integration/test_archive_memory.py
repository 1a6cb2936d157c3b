"""Export and import stream: their memory does not grow with the game. A game of 1,000
pictures peaks where a game of 100 does (the archive ten times the size). Quick enough (about
8 s) to run with every test run, unlike tests/perf."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from testkit.seeding import seed_images

PICTURE_BYTES = 100_000  # the commands hash but never decode: any distinct bytes do


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def _peak_rss(environ: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict]:
    """Run `image-sidecar ARGS`; the peak resident memory it reached, and its summary."""
    process = subprocess.Popen(
        [sys.executable, "-m", "image_sidecar", *args],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _rss_bytes(process.pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stdout, stderr = process.communicate(timeout=600)
    sampler.join()
    assert process.returncode == 0, stderr.decode()
    return peak[0], json.loads(stdout)


def _round_trip(count: int, database, storage_dir, environ, work: Path) -> tuple[int, int]:
    """Peak RSS of the export, then of the import after the game is purged."""
    code = f"BIG{count}"
    rnd = random.Random(count)
    seed_images(
        database.url,
        storage_dir,
        count,
        game_code=code,
        expired=False,
        picture=lambda n: rnd.randbytes(PICTURE_BYTES),
    )
    archive = work / f"{code}.zip"
    exported, summary = _peak_rss(environ, work, "export", "--game", code, "--out", str(archive))
    assert summary["images"] == count
    assert archive.stat().st_size > count * PICTURE_BYTES
    database.rows("DELETE FROM generated_images WHERE game_code = %s RETURNING 1", code)
    for path in storage_dir.glob(f"game-{code}-*/**/*.png"):
        path.unlink()
    imported, summary = _peak_rss(environ, work, "import", str(archive))
    assert summary["images_restored"] == count
    return exported, imported


def test_export_and_import_of_1000_pictures_peak_where_100_do(
    database, storage_dir, sidecar_environ, tmp_path
):
    small = _round_trip(100, database, storage_dir, sidecar_environ, tmp_path)
    large = _round_trip(1_000, database, storage_dir, sidecar_environ, tmp_path)
    grown = (1_000 - 100) * PICTURE_BYTES  # what the archive grew by: 90 MB
    for name, before, after in zip(("export", "import"), small, large, strict=True):
        print(f"{name}: peak RSS {before / 1e6:.0f} MB (100), {after / 1e6:.0f} MB (1,000)")
        assert after - before < grown / 4, name
