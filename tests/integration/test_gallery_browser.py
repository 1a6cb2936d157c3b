"""The share page in a real browser: Debian's Chromium, headless, driven by Playwright against
the sidecar on loopback. A game of 3 rounds x 4 players, a winner per round, one share."""

from __future__ import annotations

import io
import os
import shutil
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image, ImageStat

from testkit.helpers import uploader
from testkit.images import drawing_png

SENTENCES = [
    "My teacher secretly moonlights as a disco-dancing pirate",
    "The worst superpower is turning into a sandwich",
    "Grandma's new hobby: skateboarding with penguins",
    "At midnight the toaster starts writing poetry",
]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium (CI installs it); elsewhere the test skips, saying so."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if path is None:
        message = "chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    executable = chromium_path()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def shared_game(sidecar_server, make_app) -> dict[str, Any]:
    """A sidecar on loopback holding a game of 3 rounds x 4 players with a winner per round,
    shared: its URL, the uploads' bytes by download name, the winners' image ids."""
    server = await sidecar_server(make_app())
    base = f"http://127.0.0.1:{server.port}"
    import aiohttp

    async with aiohttp.ClientSession(base) as session:
        upload = uploader(session)
        players = [str(uuid.uuid4()) for _ in range(4)]
        uploads: dict[str, bytes] = {}
        winners = []
        for round_number in (1, 2, 3):
            records = []
            for index, player_id in enumerate(players):
                data = drawing_png(seed=round_number * 10 + index, side=640)
                response = await upload(
                    image=data,
                    game_code="BRWSR",
                    round_number=round_number,
                    player_id=player_id,
                    completed_sentence=SENTENCES[(index + round_number) % 4],
                )
                assert response.status == 201, await response.text()
                record = await response.json()
                records.append(record)
                uploads[f"round-{round_number}-player-{player_id}.png"] = data
            won = records[round_number % 4]
            picked = await session.put(
                f"/api/games/BRWSR/rounds/{round_number}/winner",
                json={"player_id": won["player_id"]},
            )
            assert picked.status == 200
            winners.append(won["image_id"])
        share = await (await session.post("/api/shares", json={"game_code": "BRWSR"})).json()
    return {"url": share["url"], "uploads": uploads, "winners": winners, "base": base}


async def open_page(browser: Any, url: str, width: int, height: int) -> tuple[Any, list[str]]:
    """The page at this viewport, scrolled through so lazy pictures load; the console errors
    and page errors it reported (CSP violations are console errors)."""
    page = await browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    response = await page.goto(url, wait_until="load")
    assert response is not None
    assert response.status == 200
    for _ in range(12):
        await page.mouse.wheel(0, height)
        await page.wait_for_timeout(100)
    await page.wait_for_function(
        "[...document.images].every((image) => image.complete && image.naturalWidth > 0)",
        timeout=15000,
    )
    return page, problems


def assert_not_blank(png: bytes) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    spread = ImageStat.Stat(image).stddev
    assert max(spread) > 20, f"the screenshot looks blank (stddev {spread})"
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 200


async def test_the_shared_game_shows_12_pictures_3_winners_and_downloads_in_chromium(
    browser, shared_game
):
    page, problems = await open_page(browser, shared_game["url"], 390, 844)
    assert problems == []
    assert await page.locator("figure").count() == 12
    assert await page.eval_on_selector_all(
        "img", "(images) => images.every((image) => image.naturalWidth > 0)"
    )
    winners = await page.eval_on_selector_all(
        "figure.winner", "(figures) => figures.map((f) => f.dataset.imageId)"
    )
    assert winners == shared_game["winners"]
    assert await page.locator("figure.winner .badge").count() == 3
    # The grid loads thumbnails only, never the originals.
    fetched = await page.evaluate(
        "performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    pictures = [name for name in fetched if "/generated-images/" in name]
    assert len(pictures) == 12
    assert all(".thumb." in name for name in pictures), pictures

    for href in await page.eval_on_selector_all("a.download", "(a) => a.map((x) => x.href)"):
        answer = await page.request.get(href)
        assert answer.status == 200
        assert answer.headers["content-disposition"].startswith("attachment;")
        name = answer.headers["content-disposition"].split('"')[1]
        assert await answer.body() == shared_game["uploads"][name]
    zip_href = await page.eval_on_selector("a.all", "(a) => a.href")
    archive = zipfile.ZipFile(io.BytesIO(await (await page.request.get(zip_href)).body()))
    assert {name: archive.read(name) for name in archive.namelist()} == shared_game["uploads"]

    og = await page.eval_on_selector_all(
        "meta[property^='og:']",
        "(m) => Object.fromEntries(m.map((x) => [x.getAttribute('property'), x.content]))",
    )
    assert og["og:image"].startswith(shared_game["base"] + "/generated-images/")
    assert og["og:image"].endswith(".large.webp")
    assert (await page.request.get(og["og:image"])).status == 200

    phone = await page.screenshot(full_page=False)
    assert_not_blank(phone)
    if os.environ.get("GALLERY_SCREENSHOT"):  # how docs/gallery-phone.png is made
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=os.environ["GALLERY_SCREENSHOT"])
    await page.close()


async def test_the_page_is_light_on_a_phone_and_readable_on_a_desktop(browser, shared_game):
    page, problems = await open_page(browser, shared_game["url"], 1280, 900)
    assert problems == []
    assert_not_blank(await page.screenshot(full_page=True))
    columns = await page.evaluate(
        "getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length"
    )
    assert columns == 4
    await page.close()

    phone = await browser.new_page(viewport={"width": 390, "height": 844})
    await phone.goto(shared_game["url"], wait_until="load")
    weight = await phone.evaluate(
        """() => {
          const entries = [...performance.getEntriesByType('navigation'),
                           ...performance.getEntriesByType('resource')];
          const pictures = performance.getEntriesByType('resource')
            .filter((entry) => entry.initiatorType === 'img');
          return {bytes: entries.reduce((sum, entry) => sum + entry.encodedBodySize, 0),
                  firstImageMs: Math.min(...pictures.map((entry) => entry.responseEnd))};
        }"""
    )
    originals = sum(len(data) for data in shared_game["uploads"].values())
    print(f"phone first screen: {weight['bytes']} bytes (originals: {originals}), "
          f"first image after {weight['firstImageMs']:.0f} ms")  # fmt: skip
    assert weight["bytes"] < originals / 10
    await phone.close()
