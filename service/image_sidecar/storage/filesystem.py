"""Filesystem BlobStore: atomic writes, hard-linked reuse, all blocking calls off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from image_sidecar.errors import StorageError
from image_sidecar.storage.base import (
    BlobNotFound,
    BlobRef,
    DeleteResult,
    LocalBlob,
    NewBlob,
    StagedBlob,
    StoreUsage,
    WalkedChunk,
    check_key,
)
from image_sidecar.storage.digests import DigestCache
from image_sidecar.storage.posix import (
    DELETE_THREADS,
    LEGACY_TEMP,
    bytes_freed,
    files_with_prefix,
    fsync_dir,
    remove_older_entries,
    storage_error,
    top_level_dirs,
    walk_under,
)
from image_sidecar.tracing import traced

T = TypeVar("T")


# Temp files of writes in progress, in one directory at the store's root (no key can name a
# hidden directory): what a crash leaves is found by listing it, never by walking the store.
STAGING = ".staging"


class FilesystemBlobStore:
    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir.resolve()
        self.staging_dir = self.base_dir / STAGING
        self._digests = DigestCache()

    def path_for(self, key: str) -> Path:
        """The file of `key`. check_key already forbids "..", absolute and hidden names; this
        also refuses a symlinked directory on the way, which could lead out of the store.
        (One lstat per level: Path.resolve() cost a sixth of a static request's time.)"""
        directory, _, name = check_key(key).rpartition("/")
        return self._directory(key, directory) / name

    def _directory(self, key: str, directory: str) -> Path:
        """The checked directory `directory` (a key's parent part) of `key`."""
        path = self.base_dir
        for part in directory.split("/") if directory else ():
            path = path / part
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                break  # nothing on disk yet to lead anywhere; put() creates real directories
            except OSError as exc:  # e.g. the base directory is a file: a broken store
                raise storage_error(exc, f"reach {key}") from exc
            if not stat.S_ISDIR(mode):
                raise BlobNotFound(f"no such image: {key}")
        return self.base_dir / directory

    def _paths_for(self, keys: Iterable[str]) -> Iterator[tuple[str, Path | None]]:
        """(key, its file) for many keys, each directory checked once (a batch's keys share a
        few); None for a key that cannot name a file of the store."""
        checked: dict[str, Path | None] = {}
        for key in keys:
            directory, _, name = key.rpartition("/")
            try:
                if LEGACY_TEMP.fullmatch(name):
                    check_key(f"{directory}/x")  # the audit removes these; the name is ours
                else:
                    check_key(key)
            except BlobNotFound:
                yield key, None
                continue
            if directory not in checked:
                try:
                    checked[directory] = self._directory(key, directory)
                except BlobNotFound:
                    checked[directory] = None
            parent = checked[directory]
            yield key, None if parent is None else parent / name

    @staticmethod
    def _in_fresh_directory(directory: Path, create: Callable[[], T]) -> T:
        """Run `create` (which makes a file in `directory`) after making the directory. A
        concurrent delete may prune the directory in between, so that is retried."""
        for _ in range(3):
            directory.mkdir(parents=True, exist_ok=True)
            try:
                return create()
            except FileNotFoundError:
                continue
        return create()

    def _stage_sync(self, blob: NewBlob) -> StagedBlob:
        """A synced temp file in the staging directory (readers never see it)."""
        self.path_for(blob.key)  # refuse a bad key before writing anything
        try:
            fd, tmp_name = self._in_fresh_directory(
                self.staging_dir,
                lambda: tempfile.mkstemp(dir=self.staging_dir, prefix=".tmp-", suffix=".part"),
            )
        except OSError as exc:
            raise storage_error(exc, f"create {blob.key}") from exc
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(blob.data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.chmod(tmp_name, 0o644)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise storage_error(exc, f"write {blob.key}") from exc
        return StagedBlob(blob, tmp_name)

    def _stage_many_sync(self, blobs: Sequence[NewBlob]) -> list[StagedBlob]:
        staged: list[StagedBlob] = []
        try:
            for blob in blobs:
                staged.append(self._stage_sync(blob))
        except BaseException:
            self._discard_many_sync(staged)
            raise
        return staged

    def _publish_many_sync(self, staged: Sequence[StagedBlob]) -> None:
        """Renames into place, then one sync per directory: the blobs' names are durable. What
        a failure leaves unpublished is discarded."""
        directories: set[Path] = set()
        for item in staged:
            assert item.token is not None  # staged by this store
            path = self.path_for(item.blob.key)
            try:
                self._in_fresh_directory(
                    path.parent, functools.partial(os.replace, item.token, path)
                )
            except OSError as exc:
                self._discard_many_sync(staged)
                raise storage_error(exc, f"write {item.blob.key}") from exc
            self._digests.remember(path.stat(), item.blob.sha256)
            directories.add(path.parent)
        try:
            for directory in directories:
                fsync_dir(directory)
        except OSError as exc:
            raise storage_error(exc, "sync the written files' directories") from exc

    def _discard_many_sync(self, staged: Sequence[StagedBlob]) -> None:
        """Temp files removed."""
        for item in staged:
            if item.token is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(item.token)

    @traced("storage.stage_many", attributes={"storage.system": "filesystem"})
    async def stage_many(self, blobs: Sequence[NewBlob]) -> list[StagedBlob]:
        return await asyncio.to_thread(self._stage_many_sync, blobs)

    @traced("storage.publish_many", attributes={"storage.system": "filesystem"})
    async def publish_many(self, staged: Sequence[StagedBlob]) -> None:
        await asyncio.to_thread(self._publish_many_sync, staged)

    async def discard_many(self, staged: Sequence[StagedBlob]) -> None:
        await asyncio.to_thread(self._discard_many_sync, staged)

    @traced("storage.put", attributes={"storage.system": "filesystem"})
    async def put(self, key: str, data: bytes, content_type: str, sha256: str) -> None:
        await self.put_many([NewBlob(key, data, content_type, sha256)])

    @traced("storage.put_many", attributes={"storage.system": "filesystem"})
    async def put_many(self, blobs: Sequence[NewBlob]) -> None:
        await self.publish_many(await self.stage_many(blobs))

    def _link_sync(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Hard links, each made under a temp name and renamed into place, then one directory
        sync per directory: a reuse links an original and its renditions side by side."""
        directories: set[Path] = set()
        for source_key, target_key in pairs:
            source, target = self.path_for(source_key), self.path_for(target_key)
            if not source.is_file():
                raise BlobNotFound(f"no such image: {source_key}")
            tmp_name = self.staging_dir / f".tmp-{uuid.uuid4().hex}.part"
            try:
                self._in_fresh_directory(
                    self.staging_dir, functools.partial(os.link, source, tmp_name)
                )
                self._in_fresh_directory(
                    target.parent, functools.partial(os.replace, tmp_name, target)
                )
            except FileNotFoundError as exc:
                raise BlobNotFound(f"no such image: {source_key}") from exc
            except OSError as exc:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
                raise storage_error(exc, f"link {target_key}") from exc
            directories.add(target.parent)
        try:
            for directory in directories:
                fsync_dir(directory)
        except OSError as exc:
            raise storage_error(exc, "sync the linked files' directories") from exc

    async def link(self, source_key: str, target_key: str) -> None:
        await self.link_many([(source_key, target_key)])

    @traced("storage.link_many", attributes={"storage.system": "filesystem"})
    async def link_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        await asyncio.to_thread(self._link_sync, pairs)

    def _read_sync(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            if not stat.S_ISREG(path.lstat().st_mode):
                raise BlobNotFound(f"no such image: {key}")
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(f"no such image: {key}") from exc
        except OSError as exc:
            raise storage_error(exc, f"read {key}") from exc

    @traced("storage.read", attributes={"storage.system": "filesystem"})
    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read_sync, key)

    def _exists_sync(self, key: str) -> bool:
        try:
            return stat.S_ISREG(self.path_for(key).lstat().st_mode)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise storage_error(exc, f"inspect {key}") from exc

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._exists_sync, key)

    def _unlink_all_sync(
        self, keys: list[str], only_if_older_than: float | None
    ) -> tuple[list[os.stat_result], set[str], set[Path]]:
        """Unlink what exists of `keys`: the lstat of each file unlinked, the keys that failed,
        the directories they were in."""
        unlinked: list[os.stat_result] = []
        failed: set[str] = set()
        parents: set[Path] = set()
        for key, path in self._paths_for(keys):
            if path is None:
                continue  # names nothing the store holds
            try:
                st = os.lstat(path)
                if only_if_older_than is not None and st.st_ctime >= only_if_older_than:
                    continue
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError:
                failed.add(key)
                continue
            unlinked.append(st)
            parents.add(path.parent)
        return unlinked, failed, parents

    def _preview_sync(self, keys: list[str]) -> DeleteResult:
        present = []
        for _, path in self._paths_for(keys):
            with contextlib.suppress(OSError, TypeError):  # gone, or (None) no file of ours
                present.append(os.lstat(path))  # type: ignore[arg-type]
        return DeleteResult(deleted=len(present), bytes_freed=bytes_freed(present))

    async def deletion_preview(self, blobs: Iterable[BlobRef]) -> DeleteResult:
        return await asyncio.to_thread(self._preview_sync, [blob.key for blob in blobs])

    def _prune_all_sync(self, parents: set[Path]) -> None:
        for parent in sorted(parents, reverse=True):
            self._prune_empty_dirs(parent)

    def _prune_empty_dirs(self, directory: Path) -> None:
        while directory != self.base_dir and directory.is_relative_to(self.base_dir):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    @traced("storage.delete_many", attributes={"storage.system": "filesystem"})
    async def delete_many(
        self, blobs: Iterable[BlobRef], *, only_if_older_than: float | None = None
    ) -> DeleteResult:
        """Unlinks run in a few threads at once (deleting is mostly waiting on the filesystem's
        metadata), then empty directories are pruned once for the whole batch."""
        keys = [blob.key for blob in blobs]
        chunks = [keys[i::DELETE_THREADS] for i in range(DELETE_THREADS) if keys[i:]]
        results = await asyncio.gather(
            *(asyncio.to_thread(self._unlink_all_sync, chunk, only_if_older_than)
              for chunk in chunks)
        )  # fmt: skip
        unlinked = [st for found, _, _ in results for st in found]
        failed = set().union(*(failures for _, failures, _ in results))
        parents = set().union(*(dirs for _, _, dirs in results))
        if parents:
            await asyncio.to_thread(self._prune_all_sync, parents)
        return DeleteResult(
            deleted=len(unlinked), bytes_freed=bytes_freed(unlinked), failed=frozenset(failed)
        )

    def _servable_sync(self, key: str) -> LocalBlob:
        path = self.path_for(key)
        try:
            st = path.lstat()
        except OSError as exc:
            raise BlobNotFound(f"no such image: {key}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise BlobNotFound(f"no such image: {key}")
        digest = self._digests.known(st)
        if digest is None:
            try:
                with path.open("rb") as f:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
            except FileNotFoundError as exc:
                raise BlobNotFound(f"no such image: {key}") from exc
            except OSError as exc:
                raise storage_error(exc, f"read {key}") from exc
            self._digests.remember(st, digest)
        return LocalBlob(path=path, size_bytes=st.st_size, sha256=digest)

    async def servable(self, key: str) -> LocalBlob:
        return await asyncio.to_thread(self._servable_sync, key)

    async def walk(self, older_than: float, after: str | None = None) -> AsyncIterator[WalkedChunk]:
        # One top-level directory (a game) per part: memory follows the largest game.
        for top in await asyncio.to_thread(top_level_dirs, self.base_dir, after):
            yield await asyncio.to_thread(walk_under, self.base_dir, top, older_than)

    def _with_prefix_sync(self, prefix: str, older_than: float) -> list[BlobRef]:
        directory, _, stem = prefix.rpartition("/")
        try:
            parent = self._directory(prefix, directory)
        except BlobNotFound:
            return []
        try:
            return files_with_prefix(parent, directory, stem, older_than)
        except OSError as exc:
            raise storage_error(exc, f"list {prefix}") from exc

    async def blobs_with_prefix(self, prefix: str, older_than: float) -> list[BlobRef]:
        return await asyncio.to_thread(self._with_prefix_sync, prefix, older_than)

    async def remove_partial_writes(self, older_than: float) -> int:
        """Delete the temp files in the staging directory that a crash left behind before
        `older_than`; how many went."""
        return await asyncio.to_thread(remove_older_entries, self.staging_dir, older_than)

    async def stored_sha256(self, key: str) -> str | None:
        return None  # a file keeps no checksum of its own: the scrub reads it

    async def usage(self) -> StoreUsage:
        try:
            total, _, free = await asyncio.to_thread(shutil.disk_usage, self.base_dir)
        except OSError as exc:
            raise storage_error(exc, "read the free space") from exc
        return StoreUsage(free_bytes=free, total_bytes=total)

    def _health_check_sync(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(self.base_dir, os.W_OK | os.X_OK):
            raise StorageError("the storage directory is not writable")

    async def health_check(self) -> None:
        try:
            await asyncio.to_thread(self._health_check_sync)
        except OSError as exc:
            raise storage_error(exc, "reach the storage directory") from exc
