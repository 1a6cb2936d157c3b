"""The judge's pick of a round: shown in listings and on the share pages."""

from __future__ import annotations

from uuid import UUID

from image_sidecar import db
from image_sidecar.db import shares as share_rows
from image_sidecar.errors import NotFound
from image_sidecar.models import RoundRef, RoundWinner


async def pick_winner(
    pool: db.Pool, game_code: str, game_id: UUID | None, round_ref: RoundRef, player_id: UUID
) -> RoundWinner:
    """The judge's pick: the player's picture in that round wins it (a new pick replaces it)."""
    async with db.transaction(pool) as cur:
        winner = await share_rows.set_winner(cur, game_code, game_id, round_ref, player_id)
    if winner is None:
        raise NotFound(
            f"player {player_id} has no picture in round {round_ref} of {game_code}",
            field="player_id",
        )
    return winner
