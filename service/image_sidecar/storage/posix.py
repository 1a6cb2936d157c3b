"""Small POSIX helpers of the filesystem store: error mapping, directory syncs, freed bytes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from image_sidecar.errors import StorageError, StorageFull


def storage_error(exc: OSError, action: str) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"storage is full while trying to {action}")
    return StorageError(f"could not {action}: {exc.strerror or exc}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Threads that unlink a batch's files at once.
DELETE_THREADS = 4


def bytes_freed(unlinked: list[os.stat_result]) -> int:
    """A hard-linked file frees its bytes only when its last name goes. Names of one file may
    have been unlinked in parallel, each seeing another link count: the file is gone when the
    batch removed as many of its names as the most links any of them saw."""
    names: dict[tuple[int, int], list[os.stat_result]] = {}
    for st in unlinked:
        names.setdefault((st.st_dev, st.st_ino), []).append(st)
    return sum(
        seen[0].st_size for seen in names.values() if len(seen) >= max(s.st_nlink for s in seen)
    )
