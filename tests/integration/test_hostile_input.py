"""Hostile or broken request bodies get a clear 400 in the JSON error shape, never a 500."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest

from image_sidecar.prompts import prompt_hash
from tests.helpers import image_fields, sidecar_process

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


@pytest.fixture(scope="module")
def sidecar_url(tmp_path_factory, database_url: str) -> Iterator[str]:
    """One sidecar process (aiohttp's own connection handling, as deployed), for raw requests."""
    storage_dir = tmp_path_factory.mktemp("images")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "IMAGE_"))}
    environ.update(DATABASE_URL=database_url, IMAGE_STORAGE_BASE_DIR=str(storage_dir))
    with sidecar_process("serve", environ, storage_dir) as (_, url):
        yield url


def _raw_request(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library would send these) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a request line over 8,190
        b"GET /api/games/\xff\xfe/rounds/1/images HTTP/1.1\r\nHost: x\r\n\r\n",  # raw bytes
        b"GET /healthz?\xff=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: \x01\r\n\r\n",  # a control byte in a header
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"b" * 9000 + b"\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
)
def test_requests_the_http_parser_refuses_get_400_in_the_json_error_shape(
    sidecar_url, request_bytes
):
    status, headers, body = _raw_request(sidecar_url, request_bytes)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request"
    assert error["message"].startswith("not a valid HTTP request: ")
    assert not any(echo in error["message"] for echo in ("\\x", "aaaa", "bbbb"))  # no bytes echoed
