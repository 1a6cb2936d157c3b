"""Every line a replica writes is one JSON object: its workers, its picture processes, the
warnings of the libraries it uses, a refused request and a clean shutdown."""

from __future__ import annotations

import json
import signal

import aiohttp

from testkit.helpers import image_fields, sidecar_process
from testkit.images import noise_png


async def test_every_line_a_serve_with_workers_writes_is_json(sidecar_environ, tmp_path):
    environ = {
        **sidecar_environ,
        "IMAGE_SIDECAR_WORKERS": "2",
        "IMAGE_RENDITIONS_AT_UPLOAD": "large.webp",  # the thumb is made in a picture process
    }
    with sidecar_process("serve", environ, tmp_path) as (process, base):
        # One connection a request: a refused body closes its connection.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(base, connector=connector) as session:
            form = aiohttp.FormData()
            for name, value in image_fields().items():
                form.add_field(name, value)
            form.add_field("image", noise_png(80), filename="x.png")
            async with session.post("/api/images", data=form) as uploaded:
                assert uploaded.status == 201
                record = await uploaded.json()
            # A thumb made on demand: work in a picture process.
            thumb = next(r for r in record["renditions"] if r["size_bytes"] is None)
            async with session.get(thumb["url"]) as made:
                assert made.status == 200
            # A refused body in a known encoding, and a form with a broken disposition.
            async with session.post(
                "/api/cache/lookup",
                data=b"not gzip",
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            ) as refused:
                assert refused.status == 400
            broken = (
                b"--b\r\nContent-Disposition: form-data; name=\"game_code\"; filename*=bad''\r\n"
                b"\r\nABCD\r\n--b--\r\n"
            )
            async with session.post(
                "/api/images",
                data=broken,
                headers={"Content-Type": "multipart/form-data; boundary=b"},
            ) as odd:
                assert odd.status == 400
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    lines = (tmp_path / "sidecar.log").read_text().splitlines()
    assert lines
    not_json = []
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            not_json.append(line)
    assert not_json == []
    events = [json.loads(line) for line in lines]
    assert not any("Traceback" in json.dumps(event) for event in events)
    assert any(event.get("event") == "stopped" for event in events)
