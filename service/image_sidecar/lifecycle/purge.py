"""Purges: a game's (or one player's) images deleted now, on request (a player's data request)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import structlog

from image_sidecar import db
from image_sidecar.db import images as image_rows
from image_sidecar.db import retention as retention_rows
from image_sidecar.errors import AmbiguousGame
from image_sidecar.lifecycle.deletion import DeletionTally, delete_expired
from image_sidecar.storage.base import BlobStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Purge:
    game_ids: list[UUID]
    tally: DeletionTally


async def purge(
    pool: db.Pool,
    store: BlobStore,
    game_code: str,
    player_id: UUID | None = None,
    *,
    game_id: UUID | None = None,
    all_games: bool = False,
    batch_size: int,
) -> Purge:
    """Delete a game's (or one player's) images now; bytes another game reuses survive.

    Room codes are recycled, so the call never guesses: with several games holding live images
    under the code, it needs `game_id` (that game) or `all_games`, else AmbiguousGame.
    """
    async with db.cursor(pool) as cur:
        holding = await image_rows.games_with_code(cur, game_code, player_id)
        if game_id is not None:
            targets = [game_id] if game_id in holding else []
        elif all_games or len(holding) <= 1:
            targets = holding
        else:
            raise AmbiguousGame(game_code, holding)
        if targets:
            await retention_rows.expire_now(cur, targets, player_id)
    tally = DeletionTally()
    if targets:
        tally = await delete_expired(
            pool, store, batch_size=batch_size, game_ids=targets, player_id=player_id
        )
    log.info(
        "purge",
        game_code=game_code,
        game_ids=[str(target) for target in targets],
        player_id=player_id and str(player_id),
        **tally.as_dict(),
    )
    return Purge(targets, tally)
