"""A real Prometheus scrapes the sidecar on loopback; every dashboard query and alert rule is
evaluated through its HTTP API."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
import yaml

from testkit.cache import KEY, drive_traffic
from testkit.helpers import free_port, image_fields, require_tool, uploader

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "image-sidecar.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
# Grafana fills these in; with a 1 s scrape interval, 30 s windows hold plenty of samples.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "1h"}


def dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unknown Grafana variable in {expr}"
            queries.append((panel["title"], expr))
    return queries


def alert_rules() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


@pytest.fixture
async def scraped_sidecar(tmp_path, sidecar_server, aiohttp_client, make_app):
    """A client of the sidecar on a loopback port, and a Prometheus scraping it every second."""
    binary = require_tool("prometheus")
    server = await sidecar_server(make_app(IMAGE_METRICS_REFRESH_SECONDS="0.5"))
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n  - job_name: image-sidecar\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]\n"
    )
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    prometheus = PrometheusAPI(f"http://127.0.0.1:{port}")
    try:
        await prometheus.wait_for_target()
        yield await aiohttp_client(server), prometheus
    finally:
        await prometheus.close()
        process.terminate()
        await process.wait()


class PrometheusAPI:
    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **params: str) -> dict:
        async with self.session.get(self.base + path, params=params) as response:
            body = await response.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> list:
        return (await self.get("/api/v1/query", query=expr))["result"]

    async def wait_for_target(self) -> None:
        for _ in range(300):
            try:
                if await self.query('up{job="image-sidecar"} == 1'):
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        pytest.fail("prometheus never scraped the sidecar")


async def test_dashboard_queries_return_data_and_alert_rules_are_valid(scraped_sidecar, database):
    client, prometheus = scraped_sidecar
    # Two rounds of traffic a few scrapes apart, so rates and increases have samples to compare.
    await drive_traffic(client, uploader(client), database)
    await asyncio.sleep(3)
    await client.post(
        "/api/cache/lookup", json={"prompt": "A cat riding a skateboard", "art_style": "watercolor"}
    )
    await client.post(f"/api/cache/{KEY}/hits", json=image_fields(game_code="IJKL"))
    await asyncio.sleep(3)

    without_data = [
        (title, expr) for title, expr in dashboard_queries() if not await prometheus.query(expr)
    ]
    assert without_data == []

    rules = alert_rules()
    assert set(rules) == {
        "ImageSidecarDown",
        "ImageSidecarCleanupStalled",
        "ImageSidecarHighErrorRate",
        "ImageSidecarStorageHigh",
        "ImageSidecarModerationFailing",
        "ImageSidecarScrubFoundDamage",
        "ImageSidecarScrubCycleOverrun",
        "ImageSidecarAuditFoundOrphans",
    }
    for expr in rules.values():
        await prometheus.query(expr)  # asserts Prometheus accepted and evaluated it
    groups = (await prometheus.get("/api/v1/rules"))["groups"]
    health = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    assert health == dict.fromkeys(rules, "ok")


def test_promtool_checks_and_unit_tests_the_alert_rules():
    promtool = require_tool("promtool")
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        result = subprocess.run(
            [promtool, *args],
            cwd=DEPLOY / "prometheus",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
