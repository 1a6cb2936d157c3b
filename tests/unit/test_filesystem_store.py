"""The filesystem BlobStore's own behaviour (the shared contract is test_blob_store_contract)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from image_sidecar.storage.base import BlobNotFound, BlobRef
from image_sidecar.storage.filesystem import FilesystemBlobStore
from testkit.helpers import storage_files

KEY = "game-ABCD/round-1/player-1.png"


@pytest.fixture
def store(tmp_path):
    return FilesystemBlobStore(tmp_path / "images")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def put(store, key, data):
    await store.put(key, data, "image/png", sha(data))


async def test_put_leaves_no_temp_file(store):
    await put(store, KEY, b"\x89PNG data")
    await put(store, KEY, b"\x89PNG again")
    assert storage_files(store.base_dir) == [KEY]


async def test_servable_gives_path_size_and_digest(store):
    await put(store, KEY, b"abc")
    blob = await store.servable(KEY)
    assert blob.path == store.base_dir / KEY
    assert blob.size_bytes == 3
    assert blob.sha256 == sha(b"abc")


async def test_servable_hashes_files_it_did_not_write(store, tmp_path):
    other = FilesystemBlobStore(tmp_path / "images")
    await put(other, KEY, b"written elsewhere")
    assert (await store.servable(KEY)).sha256 == sha(b"written elsewhere")


async def test_a_symlinked_directory_is_not_followed(store, tmp_path):
    outside = tmp_path / "outside"
    (outside / "round-1").mkdir(parents=True)
    (outside / "round-1" / "player-1.png").write_bytes(b"secret")
    store.base_dir.mkdir(parents=True)
    (store.base_dir / "game-ABCD").symlink_to(outside)
    with pytest.raises(BlobNotFound):
        await store.servable(KEY)


async def test_link_shares_the_inode_without_copying(store):
    await put(store, KEY, b"shared")
    target = "game-OTHER/round-3/player-2.png"
    await store.link(KEY, target)
    assert os.stat(store.base_dir / KEY).st_ino == os.stat(store.base_dir / target).st_ino


async def test_deleting_one_link_frees_no_bytes_while_the_other_lives(store):
    await put(store, KEY, b"shared")
    await store.link(KEY, "game-OTHER/round-3/player-2.png")
    result = await store.delete_many([BlobRef(KEY, 6)])
    assert (result.deleted, result.bytes_freed) == (1, 0)


async def test_delete_many_prunes_empty_directories(store):
    await put(store, KEY, b"12345")
    result = await store.delete_many([BlobRef(KEY, 5)])
    assert (result.deleted, result.bytes_freed) == (1, 5)
    assert not (store.base_dir / "game-ABCD").exists()
    assert store.base_dir.exists()


async def test_a_failed_write_leaves_neither_file_nor_temp(store):
    (store.base_dir / "game-ABCD" / "round-1").mkdir(parents=True)
    (store.base_dir / KEY).mkdir()  # a directory where the file should go
    with pytest.raises(Exception, match="could not write"):
        await put(store, KEY, b"data")
    assert storage_files(store.base_dir) == []


async def test_stale_temp_files_in_staging_are_removed_and_fresh_ones_kept(store):
    store.staging_dir.mkdir(parents=True)
    (store.staging_dir / ".tmp-crashed.part").write_bytes(b"partial")
    assert await store.remove_partial_writes(time.time() - 60) == 0
    assert await store.remove_partial_writes(time.time() + 60) == 1
    assert storage_files(store.base_dir) == []


async def test_writes_stage_in_one_directory_and_leave_nothing_there(store):
    await put(store, KEY, b"data")
    await store.link(KEY, "game-ABCD/round-2/player-1.png")
    assert list(store.staging_dir.iterdir()) == []
    assert storage_files(store.base_dir) == [KEY, "game-ABCD/round-2/player-1.png"]


async def test_health_check_creates_the_base_directory(store):
    await store.health_check()
    assert store.base_dir.is_dir()
