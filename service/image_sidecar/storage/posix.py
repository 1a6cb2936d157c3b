"""Small POSIX helpers of the filesystem store: error mapping, directory syncs, freed bytes,
listings (the audit's walk, one image's files, the staging directory)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from pathlib import Path

from image_sidecar.errors import StorageError, StorageFull
from image_sidecar.storage.base import BlobRef, WalkedChunk

# A temp file of a version before the staging directory, in a game's directory: the audit finds
# those a crash left.
LEGACY_TEMP = re.compile(r"\.tmp-[A-Za-z0-9_]+\.part")


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


def top_level_dirs(base_dir: Path, after: str | None) -> list[str]:
    """The store's top-level directories (games) in order after `after`, hidden ones left out."""
    try:
        with os.scandir(base_dir) as entries:
            names = (e.name for e in entries if e.is_dir(follow_symlinks=False))
            return sorted(n for n in names if not n.startswith(".") and n > (after or ""))
    except FileNotFoundError:
        return []


def walk_under(base_dir: Path, top: str, older_than: float) -> WalkedChunk:
    """Every file under base_dir/top; those changed before `older_than` (ctime, not mtime: a
    hard link made for a cache hit renews the inode's ctime only)."""
    seen = 0
    old = []
    for dirpath, _, filenames in os.walk(base_dir / top):
        for name in filenames:
            if name.startswith(".") and not LEGACY_TEMP.fullmatch(name):
                continue
            path = Path(dirpath, name)
            with contextlib.suppress(FileNotFoundError):
                st = path.lstat()
                if stat.S_ISREG(st.st_mode):
                    seen += 1
                    if st.st_ctime < older_than:
                        old.append(BlobRef(str(path.relative_to(base_dir)), st.st_size))
    return WalkedChunk(position=top, seen=seen, old=old)


def files_with_prefix(parent: Path, directory: str, stem: str, older_than: float) -> list[BlobRef]:
    """The files of `parent` (the key directory `directory`) whose names start with `stem`,
    changed before `older_than`."""
    try:
        entries = list(os.scandir(parent))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        if entry.name.startswith(stem) and not entry.name.startswith("."):
            with contextlib.suppress(FileNotFoundError):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_ctime < older_than:
                    found.append(BlobRef(f"{directory}/{entry.name}", st.st_size))
    return found


def remove_older_entries(directory: Path, older_than: float) -> int:
    """Delete the files of `directory` changed before `older_than`; how many went."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            if entry.stat(follow_symlinks=False).st_ctime < older_than:
                os.unlink(entry.path)
                removed += 1
    return removed
