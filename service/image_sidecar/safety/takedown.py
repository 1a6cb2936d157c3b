"""Taking a picture down everywhere: by its content, in every game, for good.

Cache reuse shares one picture's bytes across games, so a bad picture is taken down by its
SHA-256. First, in one transaction, the bytes are blocked and every record holding them expires
(from the commit on, none is listed, reused or served from a lookup; an upload of the bytes is
refused). Then the records, their files and their cache entries are deleted like the cleanup
deletes expired images. A crash between the two leaves expired records that any cleanup run
finishes; nothing half-done is ever served.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from image_sidecar import db
from image_sidecar.db import blocklist as blocklist_rows
from image_sidecar.errors import NotFound
from image_sidecar.lifecycle.cleanup import DeletionTally, delete_expired
from image_sidecar.safety import webhooks
from image_sidecar.storage.base import BlobStore

log = structlog.get_logger(__name__)


class ContentNotFound(NotFound):
    """No image holds these bytes (never stored, or taken down already)."""


@dataclass(frozen=True)
class Takedown:
    sha256: str
    image_ids: list[str]
    urls: list[str]
    tally: DeletionTally
    # Whether the purge webhook took the URLs; None when none is configured.
    cdn_notified: bool | None


async def block_and_expire(
    pool: db.Pool, sha256: str, reason: str | None
) -> list[blocklist_rows.TakenDown]:
    """The first, committed step of a takedown (see the module's docstring)."""
    async with db.transaction(pool) as cur:
        held = await blocklist_rows.block_and_expire(cur, sha256, reason)
    if not held:
        raise ContentNotFound(f"no image holds the content {sha256}")
    return held


async def take_down(
    pool: db.Pool,
    store: BlobStore,
    sha256: str,
    *,
    reason: str | None,
    batch_size: int,
    public_base_url: str,
    purge_webhook_url: str | None,
) -> Takedown:
    held = await block_and_expire(pool, sha256, reason)
    tally = await delete_expired(pool, store, batch_size=batch_size, sha256=sha256)
    # Both forms: the URL as issued, and under today's public base (a CDN moved in since).
    urls = sorted(
        {taken.image_url for taken in held}
        | {f"{public_base_url}/{taken.image_path}" for taken in held}
    )
    notified = None
    if purge_webhook_url is not None:
        notified = await webhooks.post_json(
            purge_webhook_url,
            {"event": "takedown", "sha256": sha256, "urls": urls},
            event="takedown",
        )
    log.info("takedown", sha256=sha256, reason=reason, images=len(held), cdn_notified=notified)
    return Takedown(
        sha256=sha256,
        image_ids=sorted(str(taken.image_id) for taken in held),
        urls=urls,
        tally=tally,
        cdn_notified=notified,
    )
