"""Every route of the HTTP contract (openapi.json describes each)."""

from __future__ import annotations

from aiohttp import web

from image_sidecar.api import admin, cache, gallery, health, images, shares, static

GAME = "/api/games/{game_code}"
ROUND = GAME + "/rounds/{round}"
# Any segment but "lookup", so that /api/cache/lookup is only the lookup (its 405 lists POST
# alone); a malformed hash still reaches the handler, which names the field.
CACHE_ENTRY = "/api/cache/{prompt_hash:(?!lookup$)[^/]+}"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/api/openapi.json", health.openapi)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_get("/api/stats", health.stats)
    app.router.add_post("/api/images", images.upload_image)
    app.router.add_get(ROUND + "/images", images.list_round_images)
    app.router.add_get(ROUND + "/players/{player_id}/image", images.get_player_image)
    app.router.add_get(GAME + "/images", images.list_game_images)
    app.router.add_delete(GAME, admin.purge_game)
    app.router.add_delete(GAME + "/players/{player_id}/images", admin.purge_player)
    app.router.add_post("/api/admin/cleanup", admin.run_cleanup)
    app.router.add_post("/api/admin/scrub", admin.run_scrub)
    app.router.add_patch("/api/images/{image_id}", images.describe_image)
    app.router.add_delete("/api/images/by-sha256/{sha256}", admin.take_down)
    app.router.add_post("/api/cache/lookup", cache.lookup)
    app.router.add_delete("/api/cache/claims/{claim_token}", cache.release_claim)
    app.router.add_get(CACHE_ENTRY, cache.get_entry)
    app.router.add_delete(CACHE_ENTRY, cache.forget_entry)
    app.router.add_post(CACHE_ENTRY + "/hits", cache.register_hit)
    app.router.add_post(CACHE_ENTRY + "/hit-count", cache.count_hit)
    app.router.add_put(ROUND + "/winner", shares.put_winner)
    app.router.add_post("/api/shares", shares.create_share)
    app.router.add_delete("/api/shares/{share_id}", shares.revoke_share)
    app.router.add_get("/generated-images/{key:.+}", static.serve_image)
    # The public share pages: the only routes besides the images that players reach.
    app.router.add_get("/s/icon.svg", gallery.icon)  # before /s/{share_id}, which it would match
    app.router.add_get("/s/{share_id}", gallery.gallery_page)
    app.router.add_get("/s/{share_id}/images/{image_id}", gallery.download_image)
    app.router.add_get("/s/{share_id}/images.zip", gallery.download_zip)
