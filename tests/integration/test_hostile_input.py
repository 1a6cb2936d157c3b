"""Hostile or broken request bodies get a clear 400 in the JSON error shape, never a 500."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from image_sidecar.prompt_cache.prompts import prompt_hash
from testkit.helpers import image_fields, metric_sample, sidecar_process, users_environ
from testkit.images import ai_picture

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


async def _post_raw_hit(client, body: str):
    """A hit whose JSON text is written by hand (what json.dumps would never produce)."""
    return await client.post(
        f"/api/cache/{KEY}/hits", data=body, headers={"Content-Type": "application/json"}
    )


async def test_a_lone_surrogate_in_a_hit_sentence_is_400_naming_the_field(client, upload, database):
    await upload()
    body = json.dumps(image_fields(completed_sentence="SURROGATE")).replace("SURROGATE", "\\udfff")
    response = await _post_raw_hit(client, body)
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
def sidecar(tmp_path_factory, database_url: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """One sidecar process (aiohttp's own connection handling, as deployed), for raw requests
    and for measuring its memory."""
    storage_dir = tmp_path_factory.mktemp("images")
    environ = users_environ(DATABASE_URL=database_url, IMAGE_STORAGE_BASE_DIR=str(storage_dir))
    with sidecar_process("serve", environ, storage_dir) as running:
        yield running


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
    ids=["long line", "path bytes", "query bytes", "header byte", "long header", "not HTTP"],
    argvalues=[
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a request line over 8,190
        b"GET /api/games/\xff\xfe/rounds/1/images HTTP/1.1\r\nHost: x\r\n\r\n",  # raw bytes
        b"GET /healthz?\xff=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: \x01\r\n\r\n",  # a control byte in a header
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"b" * 9000 + b"\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
)
def test_requests_the_http_parser_refuses_get_400_in_the_json_error_shape(sidecar, request_bytes):
    status, headers, body = _raw_request(sidecar[1], request_bytes)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request"
    assert error["message"].startswith("not a valid HTTP request: ")
    assert not any(echo in error["message"] for echo in ("\\x", "aaaa", "bbbb"))  # no bytes echoed


def _memory_kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)[1])


def _restart_peak_count(pid: int) -> None:
    """Let VmHWM count the peak from now on (Linux: clear_refs, 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


_FIELD_VALUE = b"x" * 16 * 1024
_PARTS = 12_800  # 200 MiB of form fields


def _hostile_form(name: str) -> Iterator[bytes]:
    for number in range(_PARTS):
        field = name.format(number=number).encode()
        yield b'--b\r\nContent-Disposition: form-data; name="' + field + b'"\r\n\r\n'
        yield _FIELD_VALUE + b"\r\n"
    yield b"--b--\r\n"


async def _send_until_answered(url: str, parts: Iterator[bytes], *, chunked: bool) -> bytes:
    """POST the form as fast as the server reads it, stopping at the server's first answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = list(parts)
    framing = (
        b"Transfer-Encoding: chunked"
        if chunked
        else b"Content-Length: %d" % sum(len(part) for part in body)
    )
    writer.write(
        b"POST /api/images HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n" + framing + b"\r\n\r\n"
    )
    reading = asyncio.ensure_future(reader.read(65536))
    try:
        for part in body:
            if reading.done():
                break
            writer.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            await writer.drain()
        return await asyncio.wait_for(reading, 10)
    except ConnectionError:  # the server answered and closed while we were still sending
        return await asyncio.wait_for(reading, 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    ("name", "chunked", "status"),
    [
        ("field{number}", True, 400),  # unknown fields: refused at the first part's header
        ("prompt", True, 400),  # a known field over and over: refused at the second
        ("field{number}", False, 413),  # a Content-Length over the bound: refused unread
    ],
)
async def test_a_200_mib_form_leaves_memory_within_a_few_mib_of_rest(
    sidecar, name, chunked, status
):
    process, url = sidecar
    at_rest = _memory_kib(process.pid, "VmRSS")
    _restart_peak_count(process.pid)

    answer = await _send_until_answered(url, _hostile_form(name), chunked=chunked)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b'"invalid_field"' in answer or b'"too_large"' in answer
    peak = _memory_kib(process.pid, "VmHWM")
    assert peak - at_rest < 8 * 1024, f"peak {peak} KiB, at rest {at_rest} KiB"


async def test_a_body_trickling_past_the_body_timeout_is_408_with_connection_close(
    make_client, database
):
    client = await make_client(IMAGE_SIDECAR_BODY_TIMEOUT_SECONDS="0.5")
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(
            b"POST /api/images HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
        )
        started = time.monotonic()
        answer = b""
        for _ in range(40):  # one byte every 0.1 s, for 4 s at most
            writer.write(b"C")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                answer += await asyncio.wait_for(reader.read(4096), 0.1)
            if answer:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started < 2
        while b'"}}' not in answer:  # the rest of the JSON error, if it came apart
            answer += await asyncio.wait_for(reader.read(4096), 2)
        assert b'"request_timeout"' in answer
        assert b"Connection: close" in answer  # not kept for another request
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert database.count("generated_images") == 0


async def test_a_json_body_trickling_past_the_body_timeout_is_408(make_client):
    client = await make_client(IMAGE_SIDECAR_BODY_TIMEOUT_SECONDS="0.5")

    async def trickle() -> AsyncIterator[bytes]:
        for char in '{"prompt": "a cat"}':
            yield char.encode()
            await asyncio.sleep(0.1)

    response = await client.post(
        "/api/cache/lookup", data=trickle(), headers={"Content-Type": "application/json"}
    )
    assert response.status == 408
    assert (await response.json())["error"]["code"] == "request_timeout"


@pytest.mark.parametrize("cost", ["1E-1001", "0.0000001", "1E+999999999", "NaN", "-0.01"])
async def test_a_cost_the_column_cannot_hold_exactly_is_400(upload, database, cost):
    response = await upload(generation_cost_usd=cost)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "generation_cost_usd"
    assert database.count("generated_images") == 0


@pytest.mark.parametrize("days", ["1E-1001", "0.5", "1e1", "0", "3651"])
async def test_a_retention_that_is_not_a_whole_number_of_days_is_400(upload, days):
    response = await upload(retention_days=days)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "retention_days"


async def test_json_numbers_that_round_to_zero_are_400(client, upload):
    await upload()
    body = json.dumps(image_fields(game_code="HIT")).replace("}", ', "retention_days": 1E-1001}')
    response = await _post_raw_hit(client, body)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "retention_days"


def _routes_with_parameters(app) -> list[tuple[str, str]]:
    """(method, URL) for every route of the table, each path parameter holding a control
    character (percent-encoded, as a client sends it)."""
    found = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        formatter = info.get("formatter")
        if formatter is None:
            continue
        names = re.findall(r"{(\w+)}", formatter)
        for hostile in ("%00", "ab%00cd", "x%01", "line%0Abreak", "del%7F"):
            found.append((route.method, formatter.format(**dict.fromkeys(names, hostile))))
    return found


async def test_a_control_character_in_any_path_parameter_is_refused_before_anything_is_touched(
    client, upload, database, storage_dir
):
    await upload()
    before = (database.count("generated_images"), sorted(storage_dir.rglob("*")))
    routes = _routes_with_parameters(client.app)
    assert len({url for _, url in routes}) >= 20  # every parametrized route of the table
    for method, url in routes:
        response = await client.request(method, url, json={})
        # 404 where the route's pattern takes no such character (a key's `.` and a newline)
        assert response.status in (400, 404), (method, url, response.status)
        code = (await response.json())["error"]["code"]
        assert code == {400: "bad_request", 404: "not_found"}[response.status], (method, url)
    assert (database.count("generated_images"), sorted(storage_dir.rglob("*"))) == before


async def test_a_control_character_in_a_query_parameter_is_400_on_every_route(client, database):
    for route in client.app.router.routes():
        if route.method not in ("GET", "DELETE") or route.resource is None:
            continue
        info = route.resource.get_info()
        path = info.get("path") or info["formatter"].format(
            **dict.fromkeys(re.findall(r"{(\w+)}", info["formatter"]), "ABCD")
        )
        response = await client.request(route.method, path + "?game_id=a%00b&days=3")
        assert response.status == 400, (route.method, path, response.status)
        body = await response.json()
        assert body["error"]["field"] == "game_id"


async def test_a_client_that_drops_its_upload_is_client_closed_not_a_server_error(
    client, database, storage_dir, capsys
):
    _, writer = await asyncio.open_connection(client.server.host, client.server.port)
    part = (
        b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
        + b"\x89PNG\r\n\x1a\n"
        + b"\x00" * 500
    )
    writer.write(
        b"POST /api/images HTTP/1.1\r\nHost: sidecar\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n" + part
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await asyncio.sleep(0.3)
    await _counted_as_client_closed(client, capsys, "POST", "/api/images")
    assert database.count("generated_images") == 0
    assert [p for p in storage_dir.rglob("*") if p.is_file()] == []


async def test_a_client_that_leaves_a_zip_download_midway_is_client_closed_not_a_server_error(
    client, upload, capsys
):
    for seed in range(4):  # ~6 MB of zip: more than the sockets hold for a client not reading
        response = await upload(
            image=ai_picture(seed), game_code="LEFT", player_id=str(uuid.uuid4())
        )
        assert response.status == 201, await response.text()
    share = await (await client.post("/api/shares", json={"game_code": "LEFT"})).json()
    capsys.readouterr()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (client.server.host, client.server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET /s/{share['share_id']}/images.zip HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()
    await asyncio.sleep(0.5)
    await _counted_as_client_closed(client, capsys, "GET", "/s/{share_id}/images.zip")


async def _counted_as_client_closed(client, capsys, method: str, route: str) -> None:
    """The request is logged and counted as `client_closed`, never as a 500 or a traceback."""
    text = await (await client.get("/metrics")).text()
    answered = [
        sample.labels["status"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "sidecar_http_request_duration_seconds_count"
        and sample.labels["route"] == route
    ]
    assert answered == [], answered  # not a 500, nor any other status
    assert metric_sample(text, "sidecar_http_client_closed_total", method=method, route=route) == 1
    logged = capsys.readouterr()
    assert "client_closed" in logged.out + logged.err
    assert "Traceback" not in logged.out + logged.err
