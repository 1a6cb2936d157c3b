"""/metrics and /api/stats after real traffic; promtool accepts the exposition as it is."""

from __future__ import annotations

import asyncio
import subprocess

import aiohttp
import pytest

from testkit.cache import drive_traffic
from testkit.helpers import image_fields, require_tool
from testkit.helpers import metric_sample as sample
from testkit.images import png_bytes


@pytest.fixture
async def metrics_client(make_client):
    return await make_client(IMAGE_METRICS_REFRESH_SECONDS="0.2")


async def test_metrics_count_the_traffic(client, upload, database):
    await drive_traffic(client, upload, database)
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    stored = sample(
        text, "sidecar_images_stored_total", ai_service="dall-e-3", art_style="watercolor"
    )
    assert stored == 1
    for result in ("miss", "pending", "hit"):
        assert sample(text, "sidecar_cache_lookups_total", result=result) == 1
    assert sample(text, "sidecar_cache_hits_total") == 1
    assert sample(text, "sidecar_api_cost_saved_usd_total", ai_service="dall-e-3") == pytest.approx(
        0.05
    )
    assert sample(text, "sidecar_image_size_bytes_count") == 2
    assert sample(text, "sidecar_cleanup_runs_total", outcome="success") == 1
    assert sample(text, "sidecar_cleanup_images_deleted_total") == 1
    assert sample(text, "sidecar_cleanup_last_success_timestamp_seconds") > 0
    uploads = sample(
        text,
        "sidecar_http_request_duration_seconds_count",
        route="/api/images",
        method="POST",
        status="201",
    )
    assert uploads == 2
    assert "process_resident_memory_bytes" in text


async def test_database_gauges_are_refreshed_on_an_interval(metrics_client, database):
    response = await metrics_client.post("/api/images", data=_form(png_bytes(seed=3)))
    assert response.status == 201
    record = await response.json()
    size = record["size_bytes"] + sum(r["size_bytes"] for r in record["renditions"])
    for _ in range(50):
        text = await (await metrics_client.get("/metrics")).text()
        if sample(text, "sidecar_live_images") == 1:
            break
        await asyncio.sleep(0.1)
    assert sample(text, "sidecar_live_images") == 1
    assert sample(text, "sidecar_storage_used_bytes") == size


def _form(image):
    form = aiohttp.FormData()
    for name, value in image_fields().items():
        form.add_field(name, value)
    form.add_field("image", image, filename="a.png")
    return form


async def test_promtool_accepts_the_exposition_without_a_warning(client, upload, database):
    promtool = require_tool("promtool")
    await drive_traffic(client, upload, database)
    exposition = await (await client.get("/metrics")).read()
    result = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout + result.stderr == b""


async def test_stats_report_business_figures_from_the_database(client, upload, database):
    await drive_traffic(client, upload, database)
    response = await client.get("/api/stats?days=3")
    assert response.status == 200
    stats = await response.json()
    assert stats["days"] == 3
    assert len(stats["images_per_day"]) == 3
    today = stats["images_per_day"][-1]
    # the history counts the GONE upload, although the cleanup has deleted it since
    assert (today["generated"], today["reused"]) == (2, 1)
    assert today["cost_saved_usd"] == pytest.approx(0.05)
    assert stats["cache_hit_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert stats["cache_hits"] == 1
    assert stats["live_images"] == 2
    # every file a record names: the upload the cleanup left with its renditions, and the
    # hit's own names of the same bytes (what an object store holds; a disk shares them)
    live = await (await client.get("/api/games/ABCD/images")).json()
    (kept,) = live["images"]
    renditions = sum(r["size_bytes"] for r in kept["renditions"])
    assert stats["storage_used_bytes"] == 2 * (len(png_bytes(seed=1)) + renditions)
    assert stats["average_image_bytes"] == len(png_bytes(seed=1))
    assert stats["cost_saved_usd"] == pytest.approx(0.05)
    assert stats["cost_saved_usd_all_time"] == pytest.approx(0.05)


async def test_stats_keep_what_happened_after_cleanups_and_purges(client, upload, database):
    for number in range(50):
        game_code = "PURGED" if number < 10 else "EXPIRED"
        await upload(image=png_bytes(seed=number), game_code=game_code)
    database.expire_images("game_code = 'EXPIRED'")
    assert (await client.post("/api/admin/cleanup")).status == 200
    assert (await client.delete("/api/games/PURGED")).status == 200
    assert database.count("generated_images") == 0

    stats = await (await client.get("/api/stats?days=365")).json()
    assert len(stats["images_per_day"]) == 365
    assert stats["images_per_day"][-1]["generated"] == 50
    assert stats["cache_hit_rate"] == 0.0


@pytest.mark.parametrize("days", ["0", "366", "week"])
async def test_stats_with_a_bad_window_is_400(client, days):
    response = await client.get(f"/api/stats?days={days}")
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "days"
