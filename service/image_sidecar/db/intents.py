"""SQL of the write journal: the places written before their rows commit (write_intents)."""

from __future__ import annotations

from dataclasses import dataclass

import aiopg


@dataclass(frozen=True)
class WriteIntent:
    intent_id: int
    key_prefix: str


async def record(cur: aiopg.Cursor, key_prefixes: list[str]) -> list[int]:
    """Journal the places a write is about to use (committed before any byte is published)."""
    await cur.execute(
        "INSERT INTO write_intents (key_prefix) SELECT unnest(%s::text[]) RETURNING intent_id",
        (key_prefixes,),
    )
    return [row["intent_id"] for row in await cur.fetchall()]


async def clear(cur: aiopg.Cursor, intent_ids: list[int]) -> None:
    """The write is settled: its rows committed with this statement, or its files are gone."""
    await cur.execute(
        "DELETE FROM write_intents WHERE intent_id = ANY(%s::bigint[])", (intent_ids,)
    )


async def unsettled(
    cur: aiopg.Cursor, older_than_seconds: float, after: int, limit: int
) -> list[WriteIntent]:
    """Intents left by writes that neither committed nor cleaned up after themselves (a crash,
    a failed delete) once older than the grace period, in order after the intent `after`. The
    journal holds only those and the writes in flight: it stays small whatever the store holds.
    """
    await cur.execute(
        """
        SELECT intent_id, key_prefix FROM write_intents
        WHERE intent_id > %s AND written_at < now() - make_interval(secs => %s)
        ORDER BY intent_id LIMIT %s
        """,
        (after, older_than_seconds, limit),
    )
    return [WriteIntent(**row) for row in await cur.fetchall()]
