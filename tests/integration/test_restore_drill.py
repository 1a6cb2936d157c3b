"""The restore drill of docs/operations.md, as an operator runs it: back up (`pg_dump` and a copy
of the storage that keeps hard links), restore both into a fresh database and folder, scrub:
nothing missing or damaged, and every picture served byte for byte."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

from image_sidecar.db.embedded import database_url, drop_database, ensure_database
from testkit.database import pg_tool
from testkit.helpers import image_fields, run_sidecar, uploader
from testkit.images import noise_png


def _sh(*command: str) -> None:
    subprocess.run(command, check=True)


async def test_a_backup_restored_into_a_fresh_database_and_folder_scrubs_clean(
    client, make_client, database, postgres_admin_url, storage_dir, sidecar_environ, tmp_path
):
    upload = uploader(client)
    records = [
        await (await upload(image=noise_png(300, seed=seed), game_code=f"G{seed}")).json()
        for seed in range(3)
    ]
    hits = f"/api/cache/{records[0]['prompt_hash']}/hits"
    records.append(await (await client.post(hits, json=image_fields(game_code="REUSE"))).json())
    urls = [r["image_url"] for r in records] + [
        rendition["url"] for r in records for rendition in r["renditions"]
    ]
    served = {url: await (await client.get(url)).read() for url in urls}

    # Back up: the database, then the storage (hard links kept: a reuse's bytes stay shared).
    dump = tmp_path / "sidecar.dump"
    backup = tmp_path / "backup-images"
    _sh(pg_tool("pg_dump", database.url), "--format=custom", f"--file={dump}", database.url)
    _sh("cp", "-a", str(storage_dir), str(backup))

    # Restore both somewhere new.
    name = f"restored_{uuid.uuid4().hex[:8]}"
    ensure_database(postgres_admin_url, name)
    restored_url = database_url(postgres_admin_url, name)
    restored_dir = tmp_path / "restored-images"
    try:
        _sh(
            pg_tool("pg_restore", restored_url),
            "--no-owner",
            "--exit-on-error",
            f"--dbname={restored_url}",
            str(dump),
        )
        shutil.copytree(backup, restored_dir, symlinks=True)
        environ = {
            **sidecar_environ,
            "DATABASE_URL": restored_url,
            "IMAGE_STORAGE_BASE_DIR": str(restored_dir),
        }
        result = run_sidecar("scrub", cwd=tmp_path, environ=environ, timeout=120)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["files_checked"] >= len(urls)
        assert (summary["missing"], summary["damaged"], summary["unrecoverable"]) == (0, 0, [])

        restored = await make_client(
            DATABASE_URL=restored_url, IMAGE_STORAGE_BASE_DIR=str(restored_dir)
        )
        for url, data in served.items():
            assert await (await restored.get(url)).read() == data, url
        await restored.close()
    finally:
        drop_database(postgres_admin_url, name)
