"""The BlobStore protocol: the only way the rest of the sidecar touches image bytes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
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
class DeleteResult:
    deleted: int
    bytes_freed: int


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, sha256: str) -> None:
        """Store `data` under `key` atomically: readers see the old blob, the new one, or none."""

    async def link(self, source_key: str, target_key: str) -> None:
        """Make `target_key` hold the bytes of `source_key` without copying them where possible."""

    async def delete_many(
        self, keys: Iterable[str], *, only_if_older_than: float | None = None
    ) -> DeleteResult:
        """Delete what exists of `keys` (missing keys are not an error); with
        `only_if_older_than`, spare blobs written or linked since then."""

    async def servable(self, key: str) -> ServableBlob:
        """Locate a blob for serving; BlobNotFound when absent."""

    def old_keys(self, older_than: float) -> AsyncIterator[list[str]]:
        """Keys of blobs last written or linked before `older_than` (epoch seconds), in chunks."""

    async def remove_stale_temp_files(self, older_than: float) -> int:
        """Delete partial writes a crash left behind before `older_than`; how many went."""

    async def health_check(self) -> None:
        """Raise StorageError when the store cannot take writes."""
