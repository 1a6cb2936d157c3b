"""The SHA-256 of files already written or served, so a static GET's ETag costs no hashing."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

# Keyed by (inode, mtime, size) so a rewritten file is re-hashed. 50,000 entries are a few MB
# and cover weeks of a busy game server's images.
_ENTRIES = 50_000


class DigestCache:
    """A bounded, thread-safe map from a file's identity to its digest (least recent out)."""

    def __init__(self, entries: int = _ENTRIES) -> None:
        self._entries = entries
        self._digests: OrderedDict[tuple[int, int, int], str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, st: os.stat_result, sha256: str) -> None:
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            self._digests[key] = sha256
            self._digests.move_to_end(key)
            while len(self._digests) > self._entries:
                self._digests.popitem(last=False)

    def known(self, st: os.stat_result) -> str | None:
        with self._lock:
            return self._digests.get((st.st_ino, st.st_mtime_ns, st.st_size))
