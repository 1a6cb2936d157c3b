"""Share links: made, revoked, and what a live share shows (its gallery).

A share names a game (or one of its rounds) by its game_id, so a recycled room code never
shows another game. Its id is the only key to it: 144 random bits, never logged in full, and
an unknown, revoked or expired share is the same ShareNotFound (no oracle).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from uuid import UUID

import structlog

from image_sidecar import db
from image_sidecar.db import shares as share_rows
from image_sidecar.errors import NotFound
from image_sidecar.models import ImageRecord, Share

log = structlog.get_logger(__name__)

SHARE_ID_BYTES = 18  # 144 bits, 24 base64url characters


class ShareNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("no such share (it may have expired or been revoked)")


def share_id_hint(share_id: str) -> str:
    """What logs may show of a share id: enough to tell shares apart, useless to open one."""
    return f"{share_id[:4]}…"


async def create_share(
    pool: db.Pool,
    game_code: str,
    game_id: UUID | None,
    round_number: int | None,
    days: int,
) -> Share:
    async with db.transaction(pool) as cur:
        shared_game = await share_rows.game_with_images(cur, game_code, game_id, round_number)
        if shared_game is None:
            what = "game" if round_number is None else f"round {round_number} of the game"
            raise NotFound(f"the {what} {game_code} has no pictures to share", field="game_code")
        share_id = secrets.token_urlsafe(SHARE_ID_BYTES)
        share = await share_rows.insert_share(cur, share_id, shared_game, round_number, days)
    log.info("share_created", share=share_id_hint(share_id), game_id=str(shared_game))
    return share


async def revoke_share(pool: db.Pool, share_id: str) -> None:
    async with db.transaction(pool) as cur:
        if not await share_rows.revoke(cur, share_id):
            raise ShareNotFound
    log.info("share_revoked", share=share_id_hint(share_id))


@dataclass(frozen=True)
class SharedRound:
    round_number: int
    images: list[ImageRecord] = field(default_factory=list)

    @property
    def winner(self) -> ImageRecord | None:
        return next((image for image in self.images if image.is_winner), None)


@dataclass(frozen=True)
class Gallery:
    share: Share
    rounds: list[SharedRound]

    @property
    def images(self) -> list[ImageRecord]:
        return [image for shared_round in self.rounds for image in shared_round.images]

    @property
    def cover(self) -> ImageRecord:
        """The picture a link preview shows: the first round's winner, else its first."""
        first = self.rounds[0]
        return first.winner or first.images[0]


async def gallery(pool: db.Pool, share_id: str) -> Gallery:
    """What a live share shows, round by round; ShareNotFound when nothing is left to show."""
    async with db.cursor(pool) as cur:
        share = await share_rows.live_share(cur, share_id)
        images = [] if share is None else await share_rows.shared_images(cur, share)
    if share is None or not images:
        raise ShareNotFound
    rounds: list[SharedRound] = []
    for image in images:
        if not rounds or rounds[-1].round_number != image.round_number:
            rounds.append(SharedRound(image.round_number))
        rounds[-1].images.append(image)
    return Gallery(share, rounds)
