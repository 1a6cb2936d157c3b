"""Liveness, readiness, the OpenAPI document, and the JSON error shape for unknown routes."""

from __future__ import annotations

import json
from pathlib import Path

# The contract as it stands in the repository: what the game server's developers read.
OPENAPI_IN_REPO = Path(__file__).parents[2] / "service" / "image_sidecar" / "openapi.json"


def load_openapi() -> dict:
    return json.loads(OPENAPI_IN_REPO.read_text(encoding="utf-8"))


async def test_healthz_answers_ok(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_checks_database_and_storage(client):
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "storage": "ok"},
    }


async def test_readyz_is_503_when_storage_is_gone(client, storage_dir):
    import shutil

    shutil.rmtree(storage_dir)
    storage_dir.write_bytes(b"not a directory")
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    body = await response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] != "ok"


async def test_every_response_carries_a_request_id(client):
    mine = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["X-Request-ID"]) == 32


async def test_unknown_route_is_404_json(client):
    response = await client.get("/api/nothing-here")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_wrong_method_is_405_json(client):
    response = await client.delete("/api/images")
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_the_served_openapi_document_is_the_one_in_the_repository(client):
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    assert await response.json() == load_openapi()


def _spec_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in load_openapi()["paths"].items()
        for method in operations
        if method in {"get", "post", "delete", "put", "patch", "head"}
    }


async def test_openapi_document_lists_exactly_the_routes_the_app_serves(client):
    served = set()
    for route in client.app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical.replace("{key:.+}", "{key}")
        served.add((route.method, path))
    assert _spec_routes() == served


async def test_readyz_is_503_with_the_reason_when_free_space_is_under_the_threshold(make_client):
    client = await make_client(IMAGE_MIN_FREE_BYTES=str(2**62))  # more than any disk
    response = await client.get("/readyz")
    assert response.status == 503
    storage = (await response.json())["checks"]["storage"]
    assert "IMAGE_MIN_FREE_BYTES" in storage
    assert "bytes free" in storage


async def test_readyz_never_shows_a_path_of_the_machine(client, storage_dir):
    storage_dir.rmdir()
    storage_dir.write_bytes(b"not a directory")
    response = await client.get("/readyz")
    assert response.status == 503
    assert str(storage_dir.parent) not in await response.text()
