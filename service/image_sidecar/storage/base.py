"""The BlobStore protocol: the only way the rest of the sidecar touches image bytes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from image_sidecar.errors import StorageError

# Keys are relative paths of plain segments: no "..", no hidden names, no absolute paths.
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){0,7}")


class BlobNotFound(StorageError):
    status = 404
    code = "not_found"


class InvalidKey(BlobNotFound):
    """A key that could name something outside the store is treated as absent."""


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key) or ".." in key:
        raise InvalidKey(f"no such image: {key}")
    return key


@dataclass(frozen=True)
class LocalBlob:
    """A blob on this machine's disk: the static route sends the file itself."""

    path: Path
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class RemoteBlob:
    """A blob in an object store: the static route redirects to this short-lived URL."""

    url: str


ServableBlob = LocalBlob | RemoteBlob


@dataclass(frozen=True)
class NewBlob:
    """Bytes to store under a key, with what the caller already knows of them."""

    key: str
    data: bytes
    content_type: str
    sha256: str


@dataclass(frozen=True)
class StagedBlob:
    """A blob written where no reader sees it yet (a synced temp file), until published."""

    blob: NewBlob
    # Where the backend keeps it meanwhile (a temp file's path); None where it keeps nothing.
    token: str | None = None


@dataclass(frozen=True)
class BlobRef:
    """A stored blob's key and size, as the database (or a listing of the store) knows them."""

    key: str
    size_bytes: int


@dataclass(frozen=True)
class WalkedChunk:
    """A part of the whole store's listing (the audit's walk): a walk resumed after
    `position` goes on with the next part."""

    position: str
    seen: int  # files listed in this part
    old: list[BlobRef]  # those last written or linked before the walk's cutoff


@dataclass(frozen=True)
class DeleteResult:
    deleted: int
    bytes_freed: int
    # Keys the store refused to delete (a file turned directory, an object under legal hold):
    # they are still there, and the caller keeps what it knows about them.
    failed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StoreUsage:
    """Room left for new blobs; None where the store has no fixed bound (an object store)."""

    free_bytes: int | None
    total_bytes: int | None


class BlobStore(Protocol):
    """Every backend maps its own failures to this module's family: BlobNotFound for an absent
    blob (or a key that could name something outside the store), StorageFull when out of space,
    StorageError for anything else. Nothing of a backend's library escapes."""

    async def put(self, key: str, data: bytes, content_type: str, sha256: str) -> None:
        """Store `data` under `key` atomically: readers see the old blob, the new one, or none."""

    async def put_many(self, blobs: Sequence[NewBlob]) -> None:
        """`put` for several blobs at once: an upload's original and renditions in one trip
        (one directory sync per directory on a filesystem). On failure some may be stored:
        the caller deletes what it meant to write."""

    async def stage_many(self, blobs: Sequence[NewBlob]) -> list[StagedBlob]:
        """The slow part of `put_many`, done before the database transaction that records the
        blobs: written and synced where no reader sees them. Nothing is staged on failure."""

    async def publish_many(self, staged: Sequence[StagedBlob]) -> None:
        """Make staged blobs visible under their keys, atomically each (renames and one
        directory sync on a filesystem; the puts themselves on an object store)."""

    async def discard_many(self, staged: Sequence[StagedBlob]) -> None:
        """Remove staged blobs that were not published (the upload failed)."""

    async def link(self, source_key: str, target_key: str) -> None:
        """Make `target_key` hold the bytes of `source_key` without copying them where possible
        (a hard link, a server-side copy); deleting either one later leaves the other intact."""

    async def link_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        """`link` for several (source, target) pairs at once: a reuse's original and renditions
        in one trip (one directory sync per directory on a filesystem)."""

    async def exists(self, key: str) -> bool:
        """Whether a blob is stored under `key`."""

    async def delete_many(
        self, blobs: Iterable[BlobRef], *, only_if_older_than: float | None = None
    ) -> DeleteResult:
        """Delete what exists of `blobs` (missing ones are not an error); with
        `only_if_older_than`, spare blobs written or linked since then. Backends that cannot
        stat cheaply count the sizes given as freed. A blob that cannot be deleted is reported
        in `failed` and the others still go; StorageError only when the store cannot be
        reached at all."""

    async def deletion_preview(self, blobs: Iterable[BlobRef]) -> DeleteResult:
        """What `delete_many(blobs)` would report now, deleting nothing (a cleanup's dry run)."""

    async def read(self, key: str) -> bytes:
        """A blob's bytes (for the renditions backfill); BlobNotFound if absent."""

    async def servable(self, key: str) -> ServableBlob:
        """Locate a blob for serving: a local file or a short-lived URL; BlobNotFound if absent."""

    def walk(self, older_than: float, after: str | None = None) -> AsyncIterator[WalkedChunk]:
        """The whole store in key order, in parts (a game's directory, a page of keys), from
        after `after`; each part's blobs last written or linked before `older_than` (epoch
        seconds). Only the audit walks the store."""

    async def blobs_with_prefix(self, prefix: str, older_than: float) -> list[BlobRef]:
        """The blobs whose keys start with `prefix` (one image's files) last written or linked
        before `older_than`: what a write that never committed may have left."""

    async def remove_partial_writes(self, older_than: float) -> int:
        """Delete what writes interrupted by a crash left behind before `older_than` (epoch
        seconds); how many went. Bounded by the writes in flight, never a walk of the store;
        0 where every write is atomic by itself (an object put)."""

    async def stored_sha256(self, key: str) -> str | None:
        """The SHA-256 the store itself keeps of the blob and checks its bytes against (an S3
        object's checksum), so that the scrub need not read them: BlobNotFound if absent. None
        where it keeps none (whether the blob exists is then for `read` to say)."""

    async def usage(self) -> StoreUsage:
        """Free and total space, for readiness and capacity alerts."""

    async def health_check(self) -> None:
        """Raise StorageError when the store cannot take writes."""
