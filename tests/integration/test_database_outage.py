"""When PostgreSQL goes away the sidecar answers 503 with Retry-After, writes nothing, recovers."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import sql

from testkit.helpers import storage_files

# What a client hears of an outage: this service's words, never libpq's text (hosts, ports,
# "Is the server running...").
SERVICE_WORDS = {
    "the database cannot be reached",
    "the connection to the database failed",
    "no database connection could be opened in time",
    "the database did not answer in time",
}


def _set_connections_allowed(admin_url: str, database: str, allowed: bool) -> None:
    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(database), sql.Literal(allowed)
                )
            )
            if not allowed:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                )
    finally:
        conn.close()


@pytest.fixture
def outage(postgres_admin_url, database):
    """Call to cut the test database off (existing connections killed, new ones refused)."""

    def start() -> None:
        _set_connections_allowed(postgres_admin_url, database.name, False)

    yield start
    _set_connections_allowed(postgres_admin_url, database.name, True)


async def test_database_down_is_503_with_retry_after_and_writes_nothing(
    client, upload, outage, storage_dir, postgres_admin_url, database
):
    assert (await client.get("/api/games/ABCD/images")).status == 200
    outage()
    for response in (await client.get("/api/games/ABCD/images"), await upload()):
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        error = (await response.json())["error"]
        assert error["code"] == "database_unavailable"
        assert error["message"] in SERVICE_WORDS
    # Which probe answers what with PostgreSQL down: liveness and readiness 200 (a native
    # sidecar's pod, the game server with it, stays in its Service), the state in the body;
    # the strict readiness of replicas behind a load balancer of their own is 503.
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] in SERVICE_WORDS
    assert body["checks"]["storage"] == "ok"
    assert (await client.get("/readyz", params={"strict": "true"})).status == 503
    assert storage_files(storage_dir) == []

    _set_connections_allowed(postgres_admin_url, database.name, True)
    assert database.count("generated_images") == 0
    assert (await (await client.get("/readyz")).json())["status"] == "ready"
    assert (await client.get("/readyz", params={"strict": "true"})).status == 200
    assert (await upload()).status == 201


async def test_an_exhausted_pool_is_503_busy_not_database_unavailable(make_client):
    """Overload: every connection of the process is in use while the database is fine."""
    from image_sidecar import db
    from image_sidecar.appkeys import db_pool_key

    client = await make_client(DATABASE_POOL_SIZE="1", DATABASE_TIMEOUT_SECONDS="0.3")
    async with db.cursor(client.app[db_pool_key]):  # a request holding the only connection
        response = await client.get("/api/games/ABCD/images")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    error = (await response.json())["error"]
    assert error["code"] == "busy"
    assert "busy" in error["message"]
    assert (await client.get("/api/games/ABCD/images")).status == 200
