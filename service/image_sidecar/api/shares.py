"""Handlers of the game server's sharing calls: the judge's pick, share links (token)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from image_sidecar.api import fields
from image_sidecar.api.body import json_object
from image_sidecar.api.gallery import origin, share_url
from image_sidecar.appkeys import config_key, db_pool_key
from image_sidecar.errors import InvalidField
from image_sidecar.models import RoundWinner
from image_sidecar.sharing import links, winners

WINNER_FIELDS = frozenset({"player_id", "game_id"})
SHARE_FIELDS = frozenset({"game_code", "game_id", "round_number", "expires_in_days"})


def winner_json(winner: RoundWinner) -> dict[str, Any]:
    return {
        "game_code": winner.game_code,
        "game_id": str(winner.game_id),
        "round_id": str(winner.round_id),
        "round_number": winner.round_number,
        "player_id": str(winner.player_id),
        "image_id": str(winner.image_id),
        "chosen_at": winner.chosen_at.isoformat(),
    }


async def put_winner(request: web.Request) -> web.Response:
    game_code = fields.game_code(request.match_info["game_code"])
    round_ref = fields.round_ref(request.match_info["round"])
    body = fields.string_fields(await json_object(request))
    fields.reject_unknown(body, WINNER_FIELDS)
    if "player_id" not in body:
        raise InvalidField("player_id", "is required")
    winner = await winners.pick_winner(
        request.app[db_pool_key],
        game_code,
        fields.optional_uuid(body.get("game_id"), "game_id"),
        round_ref,
        fields.uuid_value(body["player_id"], "player_id"),
    )
    return web.json_response(winner_json(winner))


async def create_share(request: web.Request) -> web.Response:
    settings = request.app[config_key].sharing
    body = fields.string_fields(await json_object(request))
    fields.reject_unknown(body, SHARE_FIELDS)
    if "game_code" not in body:
        raise InvalidField("game_code", "is required")
    round_number = body.get("round_number")
    share = await links.create_share(
        request.app[db_pool_key],
        fields.game_code(body["game_code"]),
        fields.optional_uuid(body.get("game_id"), "game_id"),
        None
        if round_number is None
        else fields.bounded_int(round_number, "round_number", 0, fields.MAX_ROUND_NUMBER),
        fields.bounded_int(
            body.get("expires_in_days", str(settings.default_days)),
            "expires_in_days",
            1,
            settings.max_days,
        ),
    )
    return web.json_response(
        {
            "share_id": share.share_id,
            "url": share_url(origin(request), share.share_id),
            "expires_at": share.expires_at.isoformat(),
            "game_code": share.game_code,
            "game_id": str(share.game_id),
            "round_number": share.round_number,
        },
        status=201,
    )


async def revoke_share(request: web.Request) -> web.Response:
    await links.revoke_share(request.app[db_pool_key], request.match_info["share_id"])
    return web.Response(status=204)
