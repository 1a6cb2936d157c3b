"""The scrub, export and import against the plain tools an operator would use on the same files.

A game of AI-sized pictures (distinct bytes of 1.3 MB each in the full run; the commands hash
but never decode, so random bytes stand for pictures) is seeded into a database and a folder of
its own: the other scenarios' rows have no files, which a scrub would rightly take out of
service. Each command runs as an operator runs it (`image-sidecar scrub | export | import`) and
is timed by its own summary's `seconds` (the interpreter's start-up left out, as the baselines
have none worth counting):

- scrub (reads unpaced) against `sha256sum` of the same files;
- export against `zip -0` (stored, as the archive is) of the same files;
- import (every byte verified, then written; the game purged before each run) against
  `unzip` of the export into an empty folder.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.measure import Measure
from testkit.database import Database
from testkit.seeding import seed_images

GAME = "SAFE"


@dataclass
class Stock:
    """The seeded game: its database, folder and the bytes it holds."""

    url: str
    storage: Path
    work: Path
    total_bytes: int
    files: list[Path]

    @property
    def environ(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.url,
            "IMAGE_STORAGE_BASE_DIR": str(self.storage),
            "IMAGE_SCRUB_MAX_BYTES_PER_SECOND": "0",
        }

    @property
    def archive(self) -> Path:
        return self.work / "game.zip"


def stock(url: str, work: Path, pictures: int, picture_bytes: int) -> Stock:
    storage = work / "images"
    storage.mkdir(parents=True)
    rnd = random.Random(0)
    total = seed_images(
        url,
        storage,
        pictures,
        game_code=GAME,
        expired=False,
        picture=lambda n: rnd.randbytes(picture_bytes),
    )
    os.sync()
    return Stock(url, storage, work, total, sorted(storage.rglob("*.png")))


def _command(stock: Stock, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "image_sidecar", *args],
        env=stock.environ,
        cwd=stock.work,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"image-sidecar {' '.join(args)} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def _rate(stock: Stock, seconds: float) -> Measure:
    return Measure(stock.total_bytes / 2**20 / max(seconds, 1e-6))


def _timed(*command: str, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def scrub(stock: Stock) -> Measure:
    report = _command(stock, "scrub")
    if report["files_checked"] != len(stock.files) or report["unrecoverable"]:
        raise SystemExit(f"the scrub did not check the game cleanly: {report}")
    return _rate(stock, report["seconds"])


def sha256sum(stock: Stock) -> Measure:
    return _rate(stock, _timed("sha256sum", *map(str, stock.files), cwd=stock.work))


def export(stock: Stock) -> Measure:
    report = _command(stock, "export", "--game", GAME, "--out", str(stock.archive))
    return _rate(stock, report["seconds"])


def zip_files(stock: Stock) -> Measure:
    target = stock.work / "plain.zip"
    target.unlink(missing_ok=True)
    names = [str(path.relative_to(stock.storage)) for path in stock.files]
    return _rate(stock, _timed("zip", "-0", "-q", str(target), *names, cwd=stock.storage))


def import_(stock: Stock) -> Measure:
    if not stock.archive.exists():
        export(stock)
    Database(stock.url).rows("DELETE FROM generated_images WHERE game_code = %s RETURNING 1", GAME)
    for path in stock.files:
        path.unlink()
    report = _command(stock, "import", str(stock.archive))
    if report["images_restored"] != len(stock.files):
        raise SystemExit(f"the import did not restore the game: {report}")
    return _rate(stock, report["seconds"])


def unzip(stock: Stock) -> Measure:
    if not stock.archive.exists():
        export(stock)
    target = stock.work / "unzipped"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    return _rate(
        stock, _timed("unzip", "-q", str(stock.archive), "-d", str(target), cwd=stock.work)
    )
