"""Hostile or broken request bodies get a clear 400 in the JSON error shape, never a 500."""

from __future__ import annotations

import json

import pytest

from image_sidecar.prompts import prompt_hash
from tests.helpers import image_fields

KEY = prompt_hash("A cat riding a skateboard", "watercolor")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"x"),  # no boundary
        ("multipart/form-data; boundary=", b"x"),  # an empty boundary
        ("multipart/form-data; boundary=abc", b"x"),  # the wrong boundary
        ("multipart/form-data; boundary=abc", b""),  # an empty body
        (
            "multipart/form-data; boundary=abc",
            b'--abc\r\nContent-Disposition: form-data; name="game_code"\r\n\r\nABCD',  # truncated
        ),
        (
            "multipart/form-data; boundary=abc",
            b'--abc\r\nContent-Disposition: form-data; na\x01me="a"\r\n\r\nv\r\n--abc--\r\n',
        ),
    ],
)
async def test_malformed_multipart_is_400_and_writes_nothing(
    client, database, storage_dir, content_type, body
):
    response = await client.post("/api/images", data=body, headers={"Content-Type": content_type})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"
    assert database.count("generated_images") == 0
    assert list(storage_dir.iterdir()) == []


async def test_a_lone_surrogate_in_a_lookup_prompt_is_400_naming_the_field(client):
    response = await client.post(
        "/api/cache/lookup",
        data='{"prompt": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "prompt"


async def test_a_lone_surrogate_in_a_hit_sentence_is_400_naming_the_field(client, upload, database):
    await upload()
    body = json.dumps(image_fields(completed_sentence="SURROGATE")).replace("SURROGATE", "\\udfff")
    response = await client.post(
        f"/api/cache/{KEY}/hits", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "completed_sentence"
    assert database.count("generated_images") == 1


@pytest.mark.parametrize("path", ["/api/cache/lookup", f"/api/cache/{KEY}/hits"])
async def test_deeply_nested_json_is_400(client, path):
    body = "[" * 100_000 + "]" * 100_000
    response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"
