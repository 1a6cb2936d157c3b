"""The filesystem BlobStore on a real temporary directory."""

from __future__ import annotations

import hashlib
import os

import pytest

from image_sidecar.storage.base import BlobNotFound
from image_sidecar.storage.filesystem import FilesystemBlobStore
from tests.conftest import storage_files

KEY = "game-ABCD/round-1/player-1.png"


@pytest.fixture
def store(tmp_path):
    return FilesystemBlobStore(tmp_path / "images")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_put_writes_the_bytes_and_leaves_no_temp_file(store):
    await store.put(KEY, b"\x89PNG data", sha(b"\x89PNG data"))
    assert (store.base_dir / KEY).read_bytes() == b"\x89PNG data"
    assert storage_files(store.base_dir) == [KEY]


async def test_put_replaces_an_existing_file_atomically(store):
    await store.put(KEY, b"old", sha(b"old"))
    await store.put(KEY, b"new", sha(b"new"))
    assert (store.base_dir / KEY).read_bytes() == b"new"
    assert storage_files(store.base_dir) == [KEY]


async def test_servable_gives_path_size_and_digest(store):
    await store.put(KEY, b"abc", sha(b"abc"))
    blob = await store.servable(KEY)
    assert blob.path == store.base_dir / KEY
    assert blob.size_bytes == 3
    assert blob.sha256 == sha(b"abc")


async def test_servable_hashes_files_it_did_not_write(store, tmp_path):
    other = FilesystemBlobStore(tmp_path / "images")
    await other.put(KEY, b"written elsewhere", sha(b"written elsewhere"))
    assert (await store.servable(KEY)).sha256 == sha(b"written elsewhere")


async def test_servable_of_a_missing_key_raises_blob_not_found(store):
    with pytest.raises(BlobNotFound):
        await store.servable(KEY)


@pytest.mark.parametrize(
    "key", ["../outside.png", "/etc/passwd", "a/../../b.png", ".hidden", "a//b", "", "a/./b"]
)
async def test_keys_that_could_escape_the_store_are_refused(store, key):
    with pytest.raises(BlobNotFound):
        await store.put(key, b"x", sha(b"x"))
    with pytest.raises(BlobNotFound):
        await store.servable(key)
    assert not (store.base_dir.parent / "outside.png").exists()


async def test_link_shares_the_inode_without_copying(store):
    await store.put(KEY, b"shared", sha(b"shared"))
    target = "game-OTHER/round-3/player-2.png"
    await store.link(KEY, target)
    assert os.stat(store.base_dir / KEY).st_ino == os.stat(store.base_dir / target).st_ino
    assert (store.base_dir / target).read_bytes() == b"shared"


async def test_deleting_one_link_keeps_the_other(store):
    await store.put(KEY, b"shared", sha(b"shared"))
    target = "game-OTHER/round-3/player-2.png"
    await store.link(KEY, target)
    result = await store.delete_many([KEY])
    assert result.deleted == 1
    assert result.bytes_freed == 0  # the bytes live on under the other name
    assert (store.base_dir / target).read_bytes() == b"shared"


async def test_link_of_a_missing_source_raises_blob_not_found(store):
    with pytest.raises(BlobNotFound):
        await store.link(KEY, "game-OTHER/round-1/player-1.png")


async def test_delete_many_counts_bytes_skips_missing_and_prunes_empty_dirs(store):
    await store.put(KEY, b"12345", sha(b"12345"))
    result = await store.delete_many([KEY, "game-ABCD/round-1/player-missing.png"])
    assert (result.deleted, result.bytes_freed) == (1, 5)
    assert not (store.base_dir / "game-ABCD").exists()
    assert store.base_dir.exists()


async def test_a_failed_write_leaves_neither_file_nor_temp(store):
    (store.base_dir / "game-ABCD" / "round-1").mkdir(parents=True)
    (store.base_dir / KEY).mkdir()  # a directory where the file should go
    with pytest.raises(Exception, match="could not write"):
        await store.put(KEY, b"data", sha(b"data"))
    assert storage_files(store.base_dir) == []


async def test_health_check_creates_the_base_directory(store):
    await store.health_check()
    assert store.base_dir.is_dir()
