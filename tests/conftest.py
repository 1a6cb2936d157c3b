"""Shared fixtures: a real PostgreSQL, a fresh database per session, the app on loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg2
import pytest
from psycopg2.extras import RealDictCursor

from image_sidecar import db
from image_sidecar.app import create_app
from image_sidecar.config import Config, load_config
from image_sidecar.embedded_db import (
    database_url as url_for_database,
)
from image_sidecar.embedded_db import (
    drop_database,
    ensure_database,
    start_embedded_postgres,
)
from tests.sample_images import png_bytes


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    import docker

    try:
        client = docker.from_env(timeout=3)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except docker.errors.DockerException:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server we may create databases on, found as DESIGN.md says:
    TEST_DATABASE_URL, else testcontainers when a Docker engine answers, else pgserver.
    """
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        server = start_embedded_postgres(
            Path(tempfile.mkdtemp(prefix="sidecar-pg-")) / "data", delete_on_stop=True
        )
        yield server.get_uri()
        server.cleanup()


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session, dropped at the end."""
    name = f"sidecar_test_{uuid.uuid4().hex[:12]}"
    ensure_database(postgres_admin_url, name)
    url = url_for_database(postgres_admin_url, name)
    asyncio.run(db.migrate_database(url))
    yield url
    drop_database(postgres_admin_url, name)


class Database:
    """Synchronous peek into the test database, for assertions about what was written."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = psycopg2.extensions.parse_dsn(url)["dbname"]

    def rows(self, query: str, *params: Any) -> list[dict[str, Any]]:
        conn = psycopg2.connect(self.url)
        try:
            conn.autocommit = True
            with conn.cursor(cursor_factory=RealDictCursor) as cur:
                cur.execute(query, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def count(self, table: str) -> int:
        return self.rows(f"SELECT count(*) AS n FROM {table}")[0]["n"]


@pytest.fixture
def database(database_url: str) -> Database:
    """The session database, emptied before each test."""
    database = Database(database_url)
    database.rows(
        "TRUNCATE generated_images, image_cache, cache_claims, cache_hits, cleanup_runs "
        "RESTART IDENTITY CASCADE"
    )
    return database


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    path = tmp_path / "generated-images"
    path.mkdir()
    return path


@pytest.fixture
def make_config(database: Database, storage_dir: Path) -> Callable[..., Config]:
    """A Config for the test database and storage, with any variable overridden."""

    def make(**environ: str) -> Config:
        return load_config(
            {
                "DATABASE_URL": database.url,
                "IMAGE_STORAGE_BASE_DIR": str(storage_dir),
                **environ,
            }
        )

    return make


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
async def client(aiohttp_client: Any, config: Config) -> Any:
    """The whole app, served over real HTTP on loopback."""
    return await aiohttp_client(create_app(config))


def storage_files(storage_dir: Path) -> list[str]:
    """Every file under the storage directory, temp files included, as sorted relative paths."""
    return sorted(str(p.relative_to(storage_dir)) for p in storage_dir.rglob("*") if p.is_file())


def image_fields(**overrides: Any) -> dict[str, str]:
    """Valid upload metadata with fresh ids; override any field, or drop one with None."""
    fields = {
        "game_code": "ABCD",
        "game_id": str(uuid.UUID(int=1)),
        "round_id": str(uuid.UUID(int=2)),
        "round_number": "1",
        "player_id": str(uuid.uuid4()),
        "submission_id": str(uuid.uuid4()),
        "completed_sentence": "A cat riding a skateboard",
        "art_style": "watercolor",
        "ai_service": "dall-e-3",
    }
    fields.update({k: str(v) for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            fields.pop(key, None)
    return fields


UploadFn = Callable[..., Awaitable[aiohttp.ClientResponse]]


def uploader(client: Any) -> UploadFn:
    """POST /api/images through `client` with valid defaults; keyword arguments override fields."""

    async def post(
        image: bytes | None = None,
        headers: dict[str, str] | None = None,
        **overrides: Any,
    ) -> aiohttp.ClientResponse:
        form = aiohttp.FormData()
        for name, value in image_fields(**overrides).items():
            form.add_field(name, value)
        form.add_field(
            "image",
            png_bytes() if image is None else image,
            filename="image.png",
            content_type="application/octet-stream",
        )
        return await client.post("/api/images", data=form, headers=headers)

    return post


@pytest.fixture
def upload(client: Any) -> UploadFn:
    return uploader(client)


def require_tool(name: str) -> str:
    """The path of a real program a test drives. CI installs them all (.ci/run), so there a
    missing tool fails the test; on a developer's machine it is skipped, saying what to install.
    """
    import shutil

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: see .ci/run for the package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_sidecar(
    *args: str, cwd: Path, environ: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`image-sidecar ARGS` as a user runs it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "image_sidecar", *args],
        cwd=cwd,
        env=os.environ if environ is None else environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server over HTTP on loopback (moto's standalone server)."""
    import time
    import urllib.request

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("the S3 server did not start")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def s3_environ(s3_endpoint: str) -> dict[str, str]:
    """Settings for the s3 storage type on a fresh bucket of the test S3 server."""
    import boto3

    bucket = f"images-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=bucket)
    return {
        "IMAGE_STORAGE_TYPE": "s3",
        "IMAGE_S3_BUCKET": bucket,
        "IMAGE_S3_ENDPOINT_URL": s3_endpoint,
        "IMAGE_S3_ACCESS_KEY_ID": "test",
        "IMAGE_S3_SECRET_ACCESS_KEY": "test",
    }
