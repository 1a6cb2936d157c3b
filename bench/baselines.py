"""The baselines' bare aiohttp app: the least a handler can do for each of the sidecar's hot
routes, with the same driver (aiopg) and the same SQL, and nothing else (no middlewares, no
validation, no logging). Run by `python -m bench` in its own process:

    python -m bench.baselines DATABASE_URL STORAGE_DIR PORT
"""

from __future__ import annotations

import json
import sys

import aiopg
from aiohttp import web
from psycopg2.extras import RealDictCursor

from image_sidecar.db.images import GAME, LISTED, RECORD, round_condition

_POOL = web.AppKey("pool", aiopg.Pool)


def _dumps(value: object) -> str:
    return json.dumps(value, default=str)


async def static_file(request: web.Request) -> web.FileResponse:
    return web.FileResponse(f"{sys.argv[2]}/{request.match_info['key']}")


async def list_round(request: web.Request) -> web.Response:
    """The sidecar's round listing query, answered as JSON rows."""
    round_number = int(request.match_info["round"])
    async with (
        request.app[_POOL].acquire() as conn,
        conn.cursor(cursor_factory=RealDictCursor) as cur,
    ):
        await cur.execute(
            f"SELECT {RECORD} FROM generated_images WHERE game_id = {GAME} "
            f"AND {round_condition(round_number)} AND {LISTED} ORDER BY created_at, image_id",
            {"game_code": request.match_info["code"], "game_id": None, "round": round_number},
        )
        rows = await cur.fetchall()
    return web.Response(
        text=json.dumps({"images": rows}, default=str), content_type="application/json"
    )


async def cache_entry(request: web.Request) -> web.Response:
    """One indexed SELECT of a cache entry and its image: a hit's least work."""
    body = await request.json()
    async with (
        request.app[_POOL].acquire() as conn,
        conn.cursor(cursor_factory=RealDictCursor) as cur,
    ):
        await cur.execute(
            "SELECT c.prompt_hash, c.hit_count, g.image_path, g.sha256 FROM image_cache c "
            "JOIN generated_images g USING (image_id) WHERE c.prompt_hash = %s",
            (body["prompt_hash"],),
        )
        row = await cur.fetchone()
    return web.Response(
        text=json.dumps({"status": "hit", "entry": row}, default=str),
        content_type="application/json",
    )


async def _pool(app: web.Application):  # type: ignore[no-untyped-def]
    app[_POOL] = await aiopg.create_pool(sys.argv[1], minsize=1, maxsize=10, enable_hstore=False)
    yield
    app[_POOL].close()
    await app[_POOL].wait_closed()


def main() -> None:
    app = web.Application()
    app.cleanup_ctx.append(_pool)
    app.router.add_get("/generated-images/{key:.+}", static_file)
    app.router.add_get("/api/games/{code}/rounds/{round}/images", list_round)
    app.router.add_post("/api/cache/lookup", cache_entry)
    app.router.add_get("/healthz", lambda _: web.Response(text="ok"))
    # An OTLP/HTTP sink for the traced sidecar's spans (a collector that accepts everything).
    app.router.add_post("/v1/traces", lambda _: web.Response())
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[3]), print=None, access_log=None)


if __name__ == "__main__":
    main()
