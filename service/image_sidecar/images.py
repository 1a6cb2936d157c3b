"""Use cases for reading images: a round, a game, one player's picture.

Writing a record (an upload or a cache reuse) is `records.register`.
"""

from __future__ import annotations

from uuid import UUID

from image_sidecar import db
from image_sidecar.db import images as image_rows
from image_sidecar.errors import NotFound
from image_sidecar.models import ImageRecord, RoundRef


class ImageNotFound(NotFound):
    pass


async def list_round(pool: db.Pool, game_code: str, round_ref: RoundRef) -> list[ImageRecord]:
    async with db.cursor(pool) as cur:
        return await image_rows.list_round(cur, game_code, round_ref)


async def list_game(pool: db.Pool, game_code: str) -> list[ImageRecord]:
    async with db.cursor(pool) as cur:
        return await image_rows.list_game(cur, game_code)


async def get_player_image(
    pool: db.Pool, game_code: str, round_ref: RoundRef, player_id: UUID
) -> ImageRecord:
    async with db.cursor(pool) as cur:
        record = await image_rows.get_player_image(cur, game_code, round_ref, player_id)
    if record is None:
        raise ImageNotFound(
            f"no image for player {player_id} in game {game_code} round {round_ref}"
        )
    return record
