"""SQL for the judge's picks (round_winners) and share links (shares)."""

from __future__ import annotations

from uuid import UUID

import aiopg

from image_sidecar.db.images import GAME, LISTED, RECORD, record_from_row, round_condition
from image_sidecar.models import ImageRecord, RoundRef, RoundWinner, Share

_SHARE_COLUMNS = "s.share_id, s.game_id, g.game_code, s.round_number, s.created_at, s.expires_at"
# A share that can be seen: neither revoked nor expired.
_LIVE_SHARE = "s.revoked_at IS NULL AND s.expires_at > now()"

# For the cleanup: an image a share still live at %(as_of)s (or now) covers is kept past its
# own expiry.
KEPT_BY_A_SHARE = """EXISTS (
    SELECT 1 FROM shares s
    WHERE s.game_id = g.game_id
      AND s.revoked_at IS NULL AND s.expires_at > coalesce(%(as_of)s::timestamptz, now())
      AND (s.round_number IS NULL OR s.round_number = g.round_number))"""


async def set_winner(
    cur: aiopg.Cursor, game_code: str, game_id: UUID | None, round_ref: RoundRef, player_id: UUID
) -> RoundWinner | None:
    """Make the player's listed picture in the round its winner (replacing an earlier pick);
    None when the player has none there."""
    await cur.execute(
        f"""
        INSERT INTO round_winners AS w (game_id, round_number, player_id, image_id)
        SELECT game_id, round_number, player_id, image_id FROM generated_images
        WHERE game_id = {GAME} AND {round_condition(round_ref)} AND player_id = %(player_id)s
          AND {LISTED}
        ON CONFLICT (game_id, round_number) DO UPDATE
            SET player_id = EXCLUDED.player_id, image_id = EXCLUDED.image_id,
                chosen_at = CASE WHEN w.image_id = EXCLUDED.image_id THEN w.chosen_at
                                 ELSE now() END
        RETURNING w.game_id, w.round_number, w.player_id, w.image_id, w.chosen_at,
            (SELECT game_code FROM games WHERE game_id = w.game_id),
            (SELECT round_id FROM game_rounds r
             WHERE r.game_id = w.game_id AND r.round_number = w.round_number)
        """,
        {"game_code": game_code, "game_id": game_id, "round": round_ref, "player_id": player_id},
    )
    row = await cur.fetchone()
    return RoundWinner(**row) if row else None


async def game_with_images(
    cur: aiopg.Cursor, game_code: str, game_id: UUID | None, round_number: int | None
) -> UUID | None:
    """The game a share means, if it (or the round) has a listed picture."""
    await cur.execute(
        f"""
        SELECT game_id FROM generated_images
        WHERE game_id = {GAME} AND (%(round)s::integer IS NULL OR round_number = %(round)s)
          AND {LISTED}
        LIMIT 1
        """,
        {"game_code": game_code, "game_id": game_id, "round": round_number},
    )
    row = await cur.fetchone()
    return row["game_id"] if row else None


async def insert_share(
    cur: aiopg.Cursor, share_id: str, game_id: UUID, round_number: int | None, days: int
) -> Share:
    await cur.execute(
        f"""
        WITH s AS (
            INSERT INTO shares (share_id, game_id, round_number, expires_at)
            VALUES (%s, %s, %s, now() + make_interval(days => %s))
            RETURNING *)
        SELECT {_SHARE_COLUMNS} FROM s JOIN games g USING (game_id)
        """,
        (share_id, game_id, round_number, days),
    )
    return Share(**await cur.fetchone())


async def live_share(cur: aiopg.Cursor, share_id: str) -> Share | None:
    await cur.execute(
        f"""
        SELECT {_SHARE_COLUMNS} FROM shares s JOIN games g USING (game_id)
        WHERE s.share_id = %s AND {_LIVE_SHARE}
        """,
        (share_id,),
    )
    row = await cur.fetchone()
    return Share(**row) if row else None


async def revoke(cur: aiopg.Cursor, share_id: str) -> bool:
    """False when there is no live share with this id."""
    await cur.execute(
        f"""
        UPDATE shares s SET revoked_at = now() WHERE s.share_id = %s AND {_LIVE_SHARE}
        RETURNING s.share_id
        """,
        (share_id,),
    )
    return await cur.fetchone() is not None


async def shared_images(cur: aiopg.Cursor, share: Share) -> list[ImageRecord]:
    """The pictures a share shows, in play order: those still stored, including those kept
    past their own expiry by the share (a purge or takedown deletes them from every share)."""
    await cur.execute(
        f"""
        SELECT {RECORD} FROM generated_images
        WHERE game_id = %(game_id)s AND NOT superseded
          AND (%(round)s::integer IS NULL OR round_number = %(round)s)
        ORDER BY round_number, created_at, image_id
        """,
        {"game_id": share.game_id, "round": share.round_number},
    )
    return [record_from_row(row) for row in await cur.fetchall()]
