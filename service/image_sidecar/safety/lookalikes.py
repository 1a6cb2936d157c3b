"""Refusing look-alikes of pictures taken down, on every upload, at a cost that stays small as
the blocklist grows.

Hamming distance has no index PostgreSQL could use at the distances a crop needs (tens of bits
of 256), and a scan of the blocklist in SQL would cost every upload 12 ms per 100,000 hashes
(measured on PostgreSQL 16). So each worker keeps the blocked hashes in memory, as numpy arrays
(one per 64-bit quarter of the hashes, each contiguous), and compares an upload's hash with all
of them at once (XOR and popcount: about 0.3 ms per 100,000 hashes; in a thread when the list is
longer). The copy stays exact across replicas: an upload's blocklist check
(`db.blocklist.check`, one round trip it makes anyway) returns the newest row's id, and a copy
that is behind reads the rows since. Rows are only added, under the takedown's lock, so ids
commit in order and nothing is missed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import structlog

from image_sidecar import db
from image_sidecar.db import blocklist as blocklist_rows
from image_sidecar.db.blocklist import BlockedLookalike
from image_sidecar.errors import BlockedContent

log = structlog.get_logger(__name__)

# Longer lists are compared in a thread (numpy releases the GIL), not on the event loop.
_INLINE_ROWS = 200_000


@dataclass(frozen=True)
class Match:
    sha256: str  # the content taken down that the upload looks like
    distance: int


class LookalikeBlocklist:
    """This worker's copy of `blocked_lookalikes`, and the upload's check against it."""

    def __init__(self, max_distance: int) -> None:
        self.max_distance = max_distance
        self.newest_id = 0
        self._quarters = np.empty((4, 0), dtype=np.uint64)  # row i: bits 64i..64i+63
        self._sha256s: list[str] = []
        self._reading = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._sha256s)

    async def refuse_if_blocked(
        self, cur: db.Cursor, sha256: str, perceptual_hash: bytes | None
    ) -> None:
        """BlockedContent when the bytes were taken down, or look like bytes that were. Holds
        the blocklist's lock (shared) until the caller's transaction ends."""
        blocked = await blocklist_rows.check(cur, sha256)
        if blocked.exact:
            raise BlockedContent("these image bytes were taken down and cannot be stored again")
        if perceptual_hash is None or blocked.newest_lookalike_id == 0:
            return
        await self._catch_up(cur, blocked.newest_lookalike_id)
        match = await self.nearest(perceptual_hash)
        if match is not None and match.distance <= self.max_distance:
            log.info(
                "upload_blocked_lookalike",
                sha256=sha256,
                looks_like=match.sha256,
                distance=match.distance,
                max_distance=self.max_distance,
            )
            raise BlockedContent(
                "this picture looks like a picture that was taken down "
                f"({match.distance} of 256 bits apart, IMAGE_BLOCK_SIMILARITY is "
                f"{self.max_distance}) and cannot be stored",
                match="lookalike",
            )

    async def nearest(self, perceptual_hash: bytes) -> Match | None:
        """The blocked hash nearest to this one; None when none is blocked."""
        if not self._sha256s:
            return None
        quarters, sha256s = self._quarters, self._sha256s
        if len(sha256s) <= _INLINE_ROWS:
            index, distance = _nearest(quarters, perceptual_hash)
        else:
            index, distance = await asyncio.to_thread(_nearest, quarters, perceptual_hash)
        return Match(sha256s[index], distance)

    async def _catch_up(self, cur: db.Cursor, newest_id: int) -> None:
        async with self._reading:  # one reader: concurrent uploads would add the rows twice
            if newest_id <= self.newest_id:
                return
            self.extend(await blocklist_rows.lookalikes_after(cur, self.newest_id))

    def extend(self, rows: list[BlockedLookalike]) -> None:
        """Rows newer than any held, in id order."""
        if not rows:
            return
        added = np.frombuffer(b"".join(row.perceptual_hash for row in rows), dtype=np.uint64)
        columns = added.reshape(-1, 4).T
        self._quarters = np.ascontiguousarray(np.concatenate([self._quarters, columns], axis=1))
        self._sha256s = self._sha256s + [row.sha256 for row in rows]
        self.newest_id = rows[-1].id


def _nearest(quarters: np.ndarray, perceptual_hash: bytes) -> tuple[int, int]:
    probe = np.frombuffer(perceptual_hash, dtype=np.uint64)
    distances = np.zeros(quarters.shape[1], dtype=np.uint16)  # up to 256: not uint8
    for quarter, probed in zip(quarters, probe, strict=True):
        distances += np.bitwise_count(quarter ^ probed)
    index = int(distances.argmin())
    return index, int(distances[index])
