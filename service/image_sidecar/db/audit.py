"""SQL of the audit (`image-sidecar audit`): its lease and where its walk stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import aiopg

from image_sidecar.db import leases


@dataclass(frozen=True)
class AuditPosition:
    resume_after: str | None  # None: a new walk starts from the first key
    walk_started_at: datetime | None


async def take_lease(cur: aiopg.Cursor, holder: UUID, seconds: float) -> bool:
    return await leases.take(cur, "audit_state", holder, seconds)


async def give_back_lease(cur: aiopg.Cursor, holder: UUID) -> None:
    await leases.give_back(cur, "audit_state", holder)


async def position(cur: aiopg.Cursor) -> AuditPosition:
    """Where the walk under way stands (the run holds the lease, so the row exists); a walk
    begins now when none is under way."""
    await cur.execute(
        """
        UPDATE audit_state SET walk_started_at = coalesce(walk_started_at, now())
        RETURNING resume_after, walk_started_at
        """
    )
    return AuditPosition(**await cur.fetchone())


async def walked_to(cur: aiopg.Cursor, position: str | None) -> None:
    """Everything up to `position` is audited; None: the walk reached the end (a success)."""
    await cur.execute(
        """
        UPDATE audit_state SET resume_after = %(position)s,
            walk_started_at = CASE WHEN %(position)s::text IS NULL THEN NULL
                                   ELSE walk_started_at END,
            last_success_at = CASE WHEN %(position)s::text IS NULL THEN now()
                                   ELSE last_success_at END
        """,
        {"position": position},
    )
