"""Use cases for reading images: a round, a game, one player's picture.

Room codes are recycled: a code names the most recent game holding it (by its first image)
unless `game_id` names another. Writing a record (an upload or a cache reuse) is
`images.writer.register`.
"""

from __future__ import annotations

from uuid import UUID

from image_sidecar import db
from image_sidecar.db import images as image_rows
from image_sidecar.errors import NotFound
from image_sidecar.models import ImageRecord, RoundRef


class ImageNotFound(NotFound):
    pass


async def list_round(
    pool: db.Pool, game_code: str, round_ref: RoundRef, game_id: UUID | None = None
) -> list[ImageRecord]:
    """A round of the game `game_id`, or of the most recent game holding `game_code`."""
    async with db.cursor(pool) as cur:
        return await image_rows.list_round(cur, game_code, round_ref, game_id)


async def list_game(
    pool: db.Pool, game_code: str, game_id: UUID | None = None
) -> list[ImageRecord]:
    async with db.cursor(pool) as cur:
        return await image_rows.list_game(cur, game_code, game_id)


async def get_player_image(
    pool: db.Pool,
    game_code: str,
    round_ref: RoundRef,
    player_id: UUID,
    game_id: UUID | None = None,
) -> ImageRecord:
    async with db.cursor(pool) as cur:
        record = await image_rows.get_player_image(cur, game_code, round_ref, player_id, game_id)
    if record is None:
        raise ImageNotFound(
            f"no image for player {player_id} in game {game_code} round {round_ref}"
        )
    return record
