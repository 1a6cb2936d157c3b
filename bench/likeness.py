"""What look-alike blocking adds to an upload, measured in process on AI-sized pictures.

An upload's picture work (decode, the large WebP, the placeholder, the perceptual hash:
`decoding.inspect` as the pool runs it) against the same work less the hash, timed alone on the
same decoded picture; and against the same work plus the look-alike check of its hash against
100,000 blocked hashes (10,000 takedowns), as a worker's `LookalikeBlocklist` makes it. The
check's database part is one subquery by primary key in a round trip the upload made anyway.
"""

from __future__ import annotations

import asyncio
import io
import random
import time

from PIL import Image

from bench.measure import Measure, rate
from image_sidecar.db.blocklist import BlockedLookalike
from image_sidecar.images.decoding import inspect
from image_sidecar.images.likeness import perceptual_hash
from image_sidecar.safety.lookalikes import LookalikeBlocklist

BLOCKED_HASHES = 100_000
_MAX_PIXELS = 50_000_000
_AT_UPLOAD = (("large", "webp"),)  # what an upload makes by default


def _work_seconds(picture: bytes) -> tuple[float, bytes | None]:
    started = time.perf_counter()
    inspected = inspect(picture, _MAX_PIXELS, ("webp",), _AT_UPLOAD)
    return time.perf_counter() - started, inspected.perceptual_hash


def _hash_seconds(picture: bytes) -> float:
    image = Image.open(io.BytesIO(picture)).convert("RGB")
    started = time.perf_counter()
    perceptual_hash(image)
    return time.perf_counter() - started


def with_hash(pictures: list[bytes]) -> Measure:
    seconds = [_work_seconds(picture)[0] for picture in pictures]
    return rate(seconds, sum(seconds))


def without_hash(pictures: list[bytes]) -> Measure:
    seconds = [_work_seconds(picture)[0] - _hash_seconds(picture) for picture in pictures]
    return rate(seconds, sum(seconds))


def full_blocklist() -> LookalikeBlocklist:
    rnd = random.Random(0)
    blocklist = LookalikeBlocklist(max_distance=56)
    blocklist.extend(
        [
            BlockedLookalike(n + 1, f"{n // 10:064x}", rnd.randbytes(32))
            for n in range(BLOCKED_HASHES)
        ]
    )
    return blocklist


def with_check(pictures: list[bytes], blocklist: LookalikeBlocklist) -> Measure:
    async def checked(picture: bytes) -> float:
        work, looks = _work_seconds(picture)
        assert looks is not None
        started = time.perf_counter()
        await blocklist.nearest(looks)
        return work + time.perf_counter() - started

    seconds = [asyncio.run(checked(picture)) for picture in pictures]
    return rate(seconds, sum(seconds))
