"""The look-alike threshold, measured: every edited copy of a picture taken down lies within
IMAGE_BLOCK_SIMILARITY of what the takedown blocks, and 1,000 unrelated pictures lie outside
it, each with a margin. The hashes come from the code an upload and a takedown run
(`decoding.inspect`, `decoding.lookalike_hashes`), on the corpus of `testkit.lookalikes`.
docs/moderation.md reports these distributions."""

from __future__ import annotations

import random
import statistics
from concurrent.futures import ProcessPoolExecutor

import pytest

from image_sidecar.config.table import BY_NAME
from image_sidecar.db.blocklist import BlockedLookalike
from image_sidecar.images.decoding import inspect, lookalike_hashes
from image_sidecar.images.likeness import distance
from image_sidecar.safety.lookalikes import LookalikeBlocklist
from testkit.lookalikes import EDITS, as_png, edited_copies, photo_like

THRESHOLD = int(BY_NAME["IMAGE_BLOCK_SIMILARITY"].default)
MARGIN = 8  # bits on either side of the threshold that no measured distance may come within
MAX_PIXELS = 50_000_000
# Pictures taken down are 384 px, so that no crop of an edit lines up pixel for pixel with a
# crop the takedown blocked; the unrelated ones 256 px (the hash reads a 256 px copy of any
# picture: larger ones only cost the corpus more time).
TAKEN_DOWN_SIDE, UNRELATED_SIDE = 384, 256
TAKEN_DOWN = range(40)  # seeds of the pictures taken down
UNRELATED = range(1_000, 2_000)  # seeds of 1,000 others


def _blocked_and_edited(seed: int) -> tuple[list[bytes], dict[str, bytes]]:
    picture = photo_like(seed, TAKEN_DOWN_SIDE)
    blocked = lookalike_hashes(as_png(picture), MAX_PIXELS)
    edited = {
        name: inspect(data, MAX_PIXELS).perceptual_hash
        for name, data in edited_copies(picture).items()
    }
    return blocked, edited


def _uploaded(seed: int) -> bytes:
    return inspect(as_png(photo_like(seed, UNRELATED_SIDE)), MAX_PIXELS).perceptual_hash


@pytest.fixture(scope="module")
def corpus() -> tuple[list[tuple[list[bytes], dict[str, bytes]]], list[bytes]]:
    with ProcessPoolExecutor(2) as pool:
        taken_down = list(pool.map(_blocked_and_edited, TAKEN_DOWN))
        unrelated = list(pool.map(_uploaded, UNRELATED, chunksize=50))
    return taken_down, unrelated


def _nearest(looks: bytes, blocked: list[bytes]) -> int:
    return min(distance(looks, hash_) for hash_ in blocked)


def test_every_edited_copy_of_a_picture_taken_down_is_within_the_threshold(corpus):
    taken_down, _ = corpus
    by_edit = {
        name: [_nearest(edited[name], blocked) for blocked, edited in taken_down] for name in EDITS
    }
    print("\nedited copies: bits from the nearest blocked hash (max, mean)")
    for name, distances in by_edit.items():
        print(f"  {name}: {max(distances)}, {statistics.mean(distances):.1f}")
    worst = max(max(distances) for distances in by_edit.values())
    assert worst <= THRESHOLD - MARGIN, by_edit


def test_no_unrelated_picture_comes_near_any_picture_taken_down(corpus):
    taken_down, unrelated = corpus
    assert len(set(unrelated)) == len(UNRELATED)
    nearest = [_nearest(looks, blocked) for looks in unrelated for blocked, _ in taken_down]
    quantiles = statistics.quantiles(nearest, n=1000)
    print(
        f"\nunrelated pictures: {len(nearest)} pairs, bits from the nearest blocked hash: "
        f"min {min(nearest)}, 0.1% {quantiles[0]:.0f}, median {statistics.median(nearest):.0f}"
    )
    assert min(nearest) >= THRESHOLD + MARGIN


async def test_a_workers_copy_of_the_blocklist_finds_the_nearest_hash_as_a_scan_would():
    rnd = random.Random(3)
    rows = [BlockedLookalike(n + 1, f"{n:064x}", rnd.randbytes(32)) for n in range(500)]
    blocklist = LookalikeBlocklist(max_distance=THRESHOLD)
    blocklist.extend(rows[:200])  # extended in two reads, as a worker catches up
    blocklist.extend(rows[200:])
    probes = [rnd.randbytes(32) for _ in range(50)]
    probes.append(rows[123].perceptual_hash)
    for probe in probes:
        match = await blocklist.nearest(probe)
        assert match is not None
        nearest = min(distance(probe, row.perceptual_hash) for row in rows)
        assert match.distance == nearest
        assert distance(probe, rows[int(match.sha256, 16)].perceptual_hash) == nearest
    assert (await blocklist.nearest(rows[123].perceptual_hash)).distance == 0
    assert await LookalikeBlocklist(THRESHOLD).nearest(probes[0]) is None
    alone = LookalikeBlocklist(THRESHOLD)
    alone.extend(rows[:1])
    opposite = bytes(255 - b for b in rows[0].perceptual_hash)
    assert (await alone.nearest(opposite)).distance == 256  # all bits apart, counted in full
