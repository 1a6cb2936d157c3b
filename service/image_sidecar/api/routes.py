"""Every route of the HTTP contract, version 1."""

from __future__ import annotations

from aiohttp import web

from image_sidecar.api import health, images, static

GAME = "/api/games/{game_code}"
ROUND = GAME + "/rounds/{round}"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/api/openapi.json", health.openapi)
    app.router.add_post("/api/images", images.upload_image)
    app.router.add_get(ROUND + "/images", images.list_round_images)
    app.router.add_get(ROUND + "/players/{player_id}/image", images.get_player_image)
    app.router.add_get(GAME + "/images", images.list_game_images)
    app.router.add_get("/generated-images/{key:.+}", static.serve_image)
