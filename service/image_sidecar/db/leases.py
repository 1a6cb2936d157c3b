"""SQL of the leases a batch job's state row holds (the scrub's, the audit's): one replica at a
time, through PgBouncer (a row, not a session lock)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import aiopg

# The tables whose single row carries a lease (holder, lease_expires_at) beside the job's state.
LeasedTable = Literal["scrub_state", "audit_state"]


async def take(cur: aiopg.Cursor, table: LeasedTable, holder: UUID, seconds: float) -> bool:
    """The lease for `seconds`, unless another holder's is still running (renewed by its own
    holder)."""
    await cur.execute(
        f"""
        INSERT INTO {table} (holder, lease_expires_at)
        VALUES (%(holder)s, now() + make_interval(secs => %(seconds)s))
        ON CONFLICT (only_row) DO UPDATE
            SET holder = EXCLUDED.holder, lease_expires_at = EXCLUDED.lease_expires_at
            WHERE {table}.holder IS NULL OR {table}.lease_expires_at <= now()
               OR {table}.holder = EXCLUDED.holder
        RETURNING 1
        """,
        {"holder": holder, "seconds": seconds},
    )
    return await cur.fetchone() is not None


async def give_back(cur: aiopg.Cursor, table: LeasedTable, holder: UUID) -> None:
    await cur.execute(
        f"UPDATE {table} SET holder = NULL, lease_expires_at = NULL WHERE holder = %s", (holder,)
    )
