"""Shared fixtures: a real PostgreSQL, a fresh database per session, the app on loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from image_sidecar import db
from image_sidecar.app import create_app
from image_sidecar.config import Config, load_config
from image_sidecar.db.embedded import (
    database_url as url_for_database,
)
from image_sidecar.db.embedded import (
    drop_database,
    ensure_database,
    start_embedded_postgres,
)
from image_sidecar.server import SidecarRunner
from image_sidecar.storage.filesystem import FilesystemBlobStore
from testkit.contract import ResponseChecker
from testkit.database import Database
from testkit.helpers import UploadFn, free_port, require_tool, uploader, users_environ


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
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server we may create databases on, found as DESIGN.md says:
    TEST_DATABASE_URL, else testcontainers when a Docker engine answers, else an embedded
    cluster (pgserver, or the machine's PostgreSQL binaries where pgserver has no build).
    """
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:18-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        server = start_embedded_postgres(
            tmp_path_factory.mktemp("postgres") / "data", delete_on_stop=True
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


@pytest.fixture
def database(database_url: str) -> Database:
    """The session database, emptied before each test (every table the migrations made)."""
    database = Database(database_url)
    tables = [
        row["tablename"]
        for row in database.rows(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'schema_migrations'"
        )
    ]
    database.rows(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    return database


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    path = tmp_path / "generated-images"
    path.mkdir()
    return path


# The suite makes every rendition at upload, so that tests about other things (cleanup, storage
# figures, moving stores) count an image's files as they are at once; the default (renditions
# made on first request) is tested by test_renditions_on_demand.py, which sets its own.
EVERY_RENDITION_AT_UPLOAD = {
    "IMAGE_RENDITIONS_AT_UPLOAD": "thumb.webp,large.webp,thumb.avif,large.avif"
}


@pytest.fixture
def make_config(database: Database, storage_dir: Path) -> Callable[..., Config]:
    """A Config for the test database and storage, with any variable overridden."""

    def make(**environ: str) -> Config:
        return load_config(
            {
                "DATABASE_URL": database.url,
                "IMAGE_STORAGE_BASE_DIR": str(storage_dir),
                **EVERY_RENDITION_AT_UPLOAD,
                **environ,
            }
        )

    return make


@pytest.fixture
def sidecar_environ(database: Database, storage_dir: Path) -> dict[str, str]:
    """The process environment of a sidecar on the test database and storage (no other
    DATABASE_/IMAGE_ variable of the caller's environment leaks in)."""
    return users_environ(
        DATABASE_URL=database.url,
        IMAGE_STORAGE_BASE_DIR=str(storage_dir),
        **EVERY_RENDITION_AT_UPLOAD,
    )


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
def make_app(make_config: Callable[..., Config]) -> Iterator[Callable[..., web.Application]]:
    """`make_app(IMAGE_X="...")`: the app with these settings, every JSON response it sends
    checked against openapi.json; a violation fails the test."""
    checker = ResponseChecker()

    def make(**environ: str) -> web.Application:
        app = create_app(make_config(**environ))
        app.middlewares.insert(0, checker.middleware)
        return app

    yield make
    if checker.violations:
        pytest.fail("responses that break openapi.json:\n" + "\n".join(checker.violations))


class SidecarTestServer(TestServer):
    """aiohttp's test server, serving as `image-sidecar serve` does: its connection handler,
    and no cancelling of a handler whose client left (aiohttp's test server cancels them,
    production does not: a test of a client that leaves must meet what production meets)."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return SidecarRunner(self.app, shutdown_seconds=5)


@pytest.fixture
async def sidecar_server() -> AsyncIterator[Callable[..., Any]]:
    """`await sidecar_server(app)`: a started SidecarTestServer on 127.0.0.1, closed after."""
    servers: list[SidecarTestServer] = []

    async def start(app: web.Application) -> SidecarTestServer:
        server = SidecarTestServer(app, host="127.0.0.1")
        servers.append(server)
        await server.start_server()
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
def make_client(
    aiohttp_client: Any, make_app: Callable[..., web.Application]
) -> Callable[..., Any]:
    """`await make_client(IMAGE_X="...")`: the whole app with these settings, over real HTTP on
    loopback. Each call is another app instance (a second replica on the same database)."""

    async def make(**environ: str) -> Any:
        return await aiohttp_client(SidecarTestServer(make_app(**environ)))

    return make


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> Any:
    """The whole app with the default test settings."""
    return await make_client()


@pytest.fixture
def upload(client: Any) -> UploadFn:
    return uploader(client)


@pytest.fixture
async def pool(database: Database) -> AsyncIterator[db.Pool]:
    """A pool on the test database, for calling use cases directly."""
    pool = await db.create_pool(database.url, size=4)
    yield pool
    await db.close_pool(pool)


@pytest.fixture
def store(storage_dir: Path) -> FilesystemBlobStore:
    """The filesystem store on the test storage directory."""
    return FilesystemBlobStore(storage_dir)


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


NODE_CLIENT = Path(__file__).resolve().parents[1] / "clients" / "node"


@pytest.fixture(scope="session")
def node_client_modules() -> Path:
    """clients/node with its npm modules (TypeScript, OpenTelemetry's API), installed from its
    lock file by `npm ci` the first time a session needs them, so that a fresh clone's test
    command runs the client's tests too. Without npm, or without the registry, the tests that
    need them are skipped saying so (failed in CI, which installs both)."""
    wanted = [NODE_CLIENT / "node_modules" / name for name in (".bin/tsc", "@opentelemetry/api")]
    if all(path.exists() for path in wanted):
        return NODE_CLIENT
    npm = require_tool("npm")
    installed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if installed.returncode != 0 or not all(path.exists() for path in wanted):
        message = f"`npm ci` in clients/node failed: {installed.stderr.strip()[-500:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return NODE_CLIENT
