"""Traces over OTLP/HTTP to a real receiver on loopback (the protobuf decoded with
opentelemetry-proto): an upload and a lookup sent under a caller's `traceparent` continue its
trace, with spans for SQL, storage and picture work; the log lines carry the trace id; no span
carries prompt text."""

from __future__ import annotations

import asyncio
import gzip
import json
import secrets
import subprocess

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from image_sidecar import tracing
from testkit.helpers import (
    image_fields,
    require_tool,
    run_sidecar,
    sidecar_process,
    uploader,
)
from testkit.images import noise_png

SENTENCE = "A secret sentence nobody may read in a trace"


class Receiver:
    """An OTLP/HTTP trace receiver: every span it got, with its resource's attributes."""

    def __init__(self) -> None:
        self.spans: list[dict] = []

    async def traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                            "resource": resource,
                        }
                    )
        return web.Response(status=200)

    def of_trace(self, trace_id: str) -> list[dict]:
        return [span for span in self.spans if span["trace_id"] == trace_id]

    async def until(self, trace_id: str, name: str, seconds: float = 20) -> list[dict]:
        for _ in range(int(seconds * 20)):
            spans = self.of_trace(trace_id)
            if any(span["name"] == name for span in spans):
                return spans
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {name} span in trace {trace_id}: {self.of_trace(trace_id)}")


def _value(value) -> object:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
async def receiver(aiohttp_server):
    receiver = Receiver()
    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/v1/traces", receiver.traces)
    server = await aiohttp_server(app, host="127.0.0.1")
    receiver.endpoint = str(server.make_url("")).rstrip("/")
    return receiver


def _log_lines(cwd) -> list[dict]:
    """The sidecar's JSON log lines (Python's own warnings at exit are plain text, and two
    workers' lines written at once may run together: those are left out)."""
    lines = []
    for line in (cwd / "sidecar.log").read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def _caller() -> tuple[str, str, str]:
    """A game server's span: (trace id, span id, its traceparent header)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


async def test_an_upload_and_a_lookup_continue_the_callers_trace(
    receiver, sidecar_environ, tmp_path
):
    environ = {
        **sidecar_environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "sidecar-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "IMAGE_SIDECAR_WORKERS": "2",
    }
    with sidecar_process("serve", environ, tmp_path) as (_, base):
        async with aiohttp.ClientSession() as session:
            upload_trace, upload_parent, traceparent = _caller()
            form = aiohttp.FormData()
            for name, value in image_fields(completed_sentence=SENTENCE).items():
                form.add_field(name, value)
            form.add_field("image", noise_png(300), filename="a.png")
            async with session.post(
                f"{base}/api/images", data=form, headers={"traceparent": traceparent}
            ) as response:
                assert response.status == 201, await response.text()
            lookup_trace, lookup_parent, traceparent = _caller()
            async with session.post(
                f"{base}/api/cache/lookup",
                json={"prompt": SENTENCE, "art_style": "watercolor"},
                headers={"traceparent": traceparent},
            ) as response:
                assert (await response.json())["status"] == "hit"

        uploaded = await receiver.until(upload_trace, "POST /api/images")
        await receiver.until(upload_trace, "storage.publish_many")
        looked_up = await receiver.until(lookup_trace, "POST /api/cache/lookup")

    for spans, parent in ((uploaded, upload_parent), (looked_up, lookup_parent)):
        (server,) = [span for span in spans if span["parent_span_id"] == parent]
        assert server["attributes"]["http.response.status_code"] in (200, 201)
        assert server["resource"]["service.name"] == "sidecar-under-test"
        sql = [span for span in spans if span["attributes"].get("db.system") == "postgresql"]
        assert any("db.statement" in span["attributes"] for span in sql), spans
    names = {span["name"] for span in uploaded}
    assert {"image.inspect", "storage.stage_many", "storage.publish_many"} <= names, names
    # With several workers, each exports its own spans, told apart by service.instance.id.
    assert all(span["resource"]["service.instance.id"] for span in receiver.spans)
    assert SENTENCE not in json.dumps(receiver.spans)

    lines = _log_lines(tmp_path)
    requests = {line.get("route"): line for line in lines if line.get("event") == "request"}
    assert requests["/api/images"]["trace_id"] == upload_trace
    assert requests["/api/cache/lookup"]["trace_id"] == lookup_trace


async def test_without_an_endpoint_no_span_is_made_and_logs_carry_no_trace_id(
    sidecar_environ, tmp_path
):
    with sidecar_process("serve", sidecar_environ, tmp_path) as (_, base):
        async with aiohttp.ClientSession() as session:
            _, _, traceparent = _caller()
            async with session.get(f"{base}/healthz", headers={"traceparent": traceparent}):
                pass
    lines = _log_lines(tmp_path)
    assert [line for line in lines if "trace_id" in line] == []
    assert not any(line.get("event") == "tracing_started" for line in lines)


async def test_a_scrub_run_from_the_command_line_is_a_trace_of_its_own(
    receiver, client, sidecar_environ, tmp_path
):
    assert (await uploader(client)(image=noise_png(64))).status == 201
    environ = {**sidecar_environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
    result = await asyncio.to_thread(run_sidecar, "scrub", cwd=tmp_path, environ=environ)
    assert result.returncode == 0, result.stderr
    (run,) = [span for span in receiver.spans if span["name"] == "scrub.run"]
    assert run["parent_span_id"] == ""
    names = {span["name"] for span in receiver.of_trace(run["trace_id"])}
    assert {"scrub.batch", "storage.read"} <= names, names


async def test_the_node_clients_traceparent_continues_in_the_sidecars_spans(
    receiver, sidecar_environ, tmp_path, node_client_modules
):
    node = require_tool("node")
    picture = tmp_path / "picture.png"
    picture.write_bytes(noise_png(64))
    trace_id, span_id, _ = _caller()
    environ = {
        **sidecar_environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with sidecar_process("serve", environ, tmp_path) as (_, base):
        saved = await asyncio.to_thread(
            subprocess.run,
            [node, "test/tracing/traced-save.mjs"],
            cwd=node_client_modules,
            env={
                "PATH": "/usr/bin:/bin",
                "SIDECAR_URL": base,
                "TRACE_ID": trace_id,
                "SPAN_ID": span_id,
                "PICTURE": str(picture),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert saved.returncode == 0, saved.stderr
        spans = await receiver.until(trace_id, "POST /api/images")
    (server,) = [span for span in spans if span["name"] == "POST /api/images"]
    assert server["parent_span_id"] == span_id
    assert json.loads(saved.stdout)["game_code"] == "TRACE"


def test_by_default_a_request_is_traced_as_its_caller_says_else_one_in_ten():
    trace_id = secrets.token_hex(16)
    assert tracing._chosen({"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert not tracing._chosen({"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-00"})
    chosen = sum(tracing._chosen({}) for _ in range(2_000))
    assert 120 <= chosen <= 280  # 10% of 2,000, give or take
    # A batch job is a root span the default sampler always keeps.
    job = tracing._default_sampler().should_sample(None, secrets.randbits(128), "scrub.run")
    assert job.decision.is_sampled()
