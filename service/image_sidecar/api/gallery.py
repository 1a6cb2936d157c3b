"""The public share pages: the gallery (HTML rendered on the server), downloads and the zip.

These are the only pages players reach (the API stays private), so they are strict: every
player-typed text is autoescaped and isolated for bidirectional text, no script runs, styles
and images come only from where they should (Content-Security-Policy), nothing frames them,
search engines skip them, and an unknown, revoked or expired share is one and the same 404.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from uuid import UUID

import aiohttp_jinja2
import jinja2
from aiohttp import web

from image_sidecar.appkeys import blob_store_key, config_key, db_pool_key
from image_sidecar.config import Config
from image_sidecar.models import ImageRecord
from image_sidecar.sharing import downloads, links
from image_sidecar.sharing.links import Gallery, ShareNotFound

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_CSS = (TEMPLATES / "gallery.css").read_text(encoding="utf-8")
_ICON = (TEMPLATES / "icon.svg").read_bytes()
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
# Thumbnails in the grid: two columns on a phone, four on a desktop.
_SIZES = "(min-width: 60em) 17rem, (min-width: 40em) 30vw, 46vw"


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"], default=True),
    )


def origin(request: web.Request) -> str:
    """The public origin of the share pages: IMAGE_SHARE_BASE_URL, else the request's own."""
    configured = request.app[config_key].sharing.base_url
    if configured:
        return configured.rstrip("/")
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    return f"{scheme if scheme in ('http', 'https') else 'http'}://{request.host}"


def share_url(base: str, share_id: str) -> str:
    return f"{base}/s/{share_id}"


def _security_headers(config: Config) -> dict[str, str]:
    images = config.storage.public_base_url
    image_source = "'self'"
    if images.startswith(("http://", "https://")):
        parts = urlsplit(images)
        image_source = f"'self' {parts.scheme}://{parts.netloc}"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; img-src {image_source}; style-src 'sha256-{_CSS_HASH}'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "X-Robots-Tag": "noindex, nofollow",
        # A revoked share must stop showing at once: browsers revalidate every time.
        "Cache-Control": "private, no-cache",
    }


def _not_found(request: web.Request) -> web.Response:
    """The one answer for unknown, revoked and expired shares, whatever was asked of them."""
    response = aiohttp_jinja2.render_template("not_found.html", request, {"css": _CSS}, status=404)
    response.headers.update(_security_headers(request.app[config_key]))
    return response


@dataclass(frozen=True)
class _Picture:
    image_id: str
    sentence: str
    player_name: str | None
    is_winner: bool
    src: str
    srcset: str
    avif_srcset: str
    large_url: str
    download_url: str
    width: int
    height: int


def _absolute(url: str, base: str) -> str:
    return url if url.startswith(("http://", "https://")) else base + url


def _picture(image: ImageRecord, images_base: str, page: str) -> _Picture:
    def url(path: str) -> str:
        return f"{images_base}/{path}"

    by_key = {(r.name, r.format): r for r in image.renditions}
    thumb, large = by_key.get(("thumb", "webp")), by_key.get(("large", "webp"))
    avif = [by_key.get((name, "avif")) for name in ("thumb", "large")]
    return _Picture(
        image_id=str(image.image_id),
        sentence=image.completed_sentence or "",
        player_name=image.player_name,
        is_winner=image.is_winner,
        src=url(thumb.image_path) if thumb else url(image.image_path),
        srcset=", ".join(f"{url(r.image_path)} {r.width}w" for r in (thumb, large) if r),
        avif_srcset=", ".join(f"{url(r.image_path)} {r.width}w" for r in avif if r),
        large_url=url(large.image_path) if large else url(image.image_path),
        download_url=f"{page}/images/{image.image_id}",
        width=(thumb or image).width or 256,
        height=(thumb or image).height or 256,
    )


def _cover(image: ImageRecord, images_base: str, base: str) -> dict[str, Any]:
    """The link preview's picture: the large WebP rendition (chat apps show WebP), else the
    original, as an absolute URL with its size."""
    large = next((r for r in image.renditions if (r.name, r.format) == ("large", "webp")), None)
    shown = large or image
    return {
        "url": _absolute(f"{images_base}/{shown.image_path}", base),
        "content_type": shown.content_type,
        "width": shown.width,
        "height": shown.height,
    }


def _title(shown: Gallery) -> str:
    share = shown.share
    where = "" if share.round_number is None else f", round {share.round_number}"
    return f"Picture This: game {share.game_code}{where}"


def _page_context(request: web.Request, shown: Gallery) -> dict[str, Any]:
    config = request.app[config_key]
    base = origin(request)
    page = f"/s/{shown.share.share_id}"
    images_base = config.storage.public_base_url
    cover = shown.cover
    return {
        "css": _CSS,
        "title": _title(shown),
        "description": cover.completed_sentence or "Pictures from a game of Picture This",
        "page_url": share_url(base, shown.share.share_id),
        "cover": _cover(cover, images_base, base),
        "picture_count": len(shown.images),
        "expires_on": _day(shown.share.expires_at),
        "zip_url": f"{page}/images.zip",
        "sizes": _SIZES,
        "rounds": [
            {
                "round_number": shown_round.round_number,
                "first": index == 0,
                "pictures": [_picture(image, images_base, page) for image in shown_round.images],
            }
            for index, shown_round in enumerate(shown.rounds)
        ],
    }


def _day(moment: datetime) -> str:
    return f"{moment:%d %B %Y}".lstrip("0")


async def gallery_page(request: web.Request) -> web.Response:
    try:
        shown = await links.gallery(request.app[db_pool_key], request.match_info["share_id"])
    except ShareNotFound:
        return _not_found(request)
    response = aiohttp_jinja2.render_template(
        "gallery.html", request, _page_context(request, shown)
    )
    response.headers.update(_security_headers(request.app[config_key]))
    return response


async def icon(request: web.Request) -> web.Response:
    """The pages' icon (a browser asks for one; a data: URL would break the CSP)."""
    return web.Response(
        body=_ICON,
        content_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=604800", "X-Content-Type-Options": "nosniff"},
    )


def _attachment(filename: str) -> str:
    """RFC 6266: an ASCII name for old clients, the whole name (any script) in filename*."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def download_image(request: web.Request) -> web.Response:
    """One original, byte for byte, as a download named by round and player."""
    try:
        image_id = UUID(request.match_info["image_id"])
        image, name, data = await downloads.original_bytes(
            request.app[db_pool_key],
            request.app[blob_store_key],
            request.match_info["share_id"],
            image_id,
        )
    except (ValueError, ShareNotFound):
        return _not_found(request)
    headers = _security_headers(request.app[config_key])
    headers["Content-Disposition"] = _attachment(name)
    return web.Response(body=data, content_type=image.content_type, headers=headers)


async def download_zip(request: web.Request) -> web.StreamResponse:
    """Every original of the share as a zip, streamed as it is built: one picture in memory at
    a time, never the archive. Pictures deleted meanwhile are left out."""
    try:
        shown = await links.gallery(request.app[db_pool_key], request.match_info["share_id"])
    except ShareNotFound:
        return _not_found(request)
    store = request.app[blob_store_key]

    names = downloads.download_names(shown.images)

    async def members() -> AsyncIterator[tuple[str, datetime, bytes]]:
        async for image, data in downloads.originals(store, shown.images):
            yield names[image.image_id], image.created_at, data

    headers = _security_headers(request.app[config_key])
    name = f"picture-this-{shown.share.game_code}"
    if shown.share.round_number is not None:
        name += f"-round-{shown.share.round_number}"
    headers["Content-Disposition"] = _attachment(f"{name}.zip")
    response = web.StreamResponse(headers=headers)
    response.content_type = "application/zip"
    await response.prepare(request)
    async for chunk in downloads.zipped(members()):
        await response.write(chunk)
    await response.write_eof()
    return response
