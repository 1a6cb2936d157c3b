"""A full disk answers 507 and leaves neither a row nor a partial file."""

from __future__ import annotations

import subprocess

import pytest

from testkit.helpers import storage_files, uploader
from testkit.images import noise_png, png_bytes


@pytest.fixture
def tiny_storage(tmp_path):
    """A 64 KiB tmpfs as the storage directory (needs root, as in CI)."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


async def test_full_disk_is_507_and_writes_nothing(make_client, database, tiny_storage):
    client = await make_client(IMAGE_STORAGE_BASE_DIR=str(tiny_storage))
    upload = uploader(client)
    small = await upload(image=png_bytes(seed=1))
    assert small.status == 201
    big = await upload(image=noise_png(260))  # about 200 KB
    assert big.status == 507
    body = await big.json()
    assert body["error"]["code"] == "storage_full"
    assert database.count("generated_images") == 1
    assert [name for name in storage_files(tiny_storage) if ".tmp-" in name] == []
