"""Liveness, readiness, the OpenAPI document, and the JSON error shape for unknown routes."""

from __future__ import annotations

import re

import pytest

from image_sidecar.api import fields
from image_sidecar.errors import InvalidField
from testkit.contract import load_openapi


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


async def test_readyz_reports_storage_gone_as_degraded_and_strict_as_503(client, storage_dir):
    import shutil

    shutil.rmtree(storage_dir)
    storage_dir.write_bytes(b"not a directory")
    response = await client.get("/readyz")
    assert response.status == 200  # the pod stays in its Service: the game server with it
    body = await response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] != "ok"
    strict = await client.get("/readyz", params={"strict": "true"})
    assert strict.status == 503
    assert strict.headers["Retry-After"] == "5"
    assert (await strict.json())["checks"] == body["checks"]
    text = await (await client.get("/metrics")).text()
    assert 'sidecar_dependency_up{dependency="storage"} 0.0' in text
    assert 'sidecar_dependency_up{dependency="database"} 1.0' in text


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


async def test_readyz_says_why_when_free_space_is_under_the_threshold(make_client):
    client = await make_client(IMAGE_MIN_FREE_BYTES=str(2**62))  # more than any disk
    response = await client.get("/readyz", params={"strict": "true"})
    assert response.status == 503
    storage = (await response.json())["checks"]["storage"]
    assert "IMAGE_MIN_FREE_BYTES" in storage
    assert "bytes free" in storage


async def test_readyz_never_shows_a_path_of_the_machine(client, storage_dir):
    storage_dir.rmdir()
    storage_dir.write_bytes(b"not a directory")
    response = await client.get("/readyz")
    assert (await response.json())["status"] == "degraded"
    assert str(storage_dir.parent) not in await response.text()


async def test_the_lookup_path_allows_post_alone(client):
    response = await client.get("/api/cache/lookup")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_a_malformed_prompt_hash_is_still_a_400_naming_it(client):
    response = await client.get("/api/cache/not-a-hash")
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "prompt_hash"


@pytest.mark.parametrize(
    "round_ref", ["1", "0042", "10000", "0d3c4a39-7d5f-4a6e-9a44-1b2a3c4d5e6f"]
)
def test_the_documented_round_pattern_takes_what_the_server_takes(round_ref):
    assert re.fullmatch(_round_pattern(), round_ref)
    assert fields.round_ref(round_ref) is not None


# "\u0661": an Arabic-Indic one, a digit to str.isdigit() and int()
@pytest.mark.parametrize("round_ref", ["10001", "99999", "000001", "-1", "1.5", "one", "\u0661"])
def test_the_documented_round_pattern_refuses_what_the_server_refuses(round_ref):
    assert not re.fullmatch(_round_pattern(), round_ref)
    with pytest.raises(InvalidField):
        fields.round_ref(round_ref)


def _round_pattern() -> str:
    operation = load_openapi()["paths"]["/api/games/{game_code}/rounds/{round}/images"]["get"]
    (schema,) = [p["schema"] for p in operation["parameters"] if p["name"] == "round"]
    return schema["pattern"]
