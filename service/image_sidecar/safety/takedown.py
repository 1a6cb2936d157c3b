"""Taking a picture down everywhere: by its content, in every game, for good, with its
look-alikes.

Cache reuse shares one picture's bytes across games, so a bad picture is taken down by its
SHA-256. First its look-alike hashes are computed (`images.likeness`: its perceptual hash and
those of nine crops, from the stored original, in the picture pool). Then, in one transaction,
the bytes and those hashes are blocked and every record holding the bytes expires (from the
commit on, none is listed, reused or served from a lookup; an upload of the bytes, or of a
picture within IMAGE_BLOCK_SIMILARITY of them, is refused). The stored look-alikes are found
next: named in the answer, and with `similar` expired and blocked too. Then the records, their
files and their cache entries are deleted like the cleanup deletes expired images. A crash
between the steps leaves expired records that any cleanup run finishes; nothing half-done is
ever served.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from image_sidecar import db
from image_sidecar.db import blocklist as blocklist_rows
from image_sidecar.db.blocklist import TakenDown
from image_sidecar.errors import NotFound, SidecarError
from image_sidecar.images.pool import ImageProcessor
from image_sidecar.lifecycle.cleanup import DeletionTally, delete_expired
from image_sidecar.safety import webhooks
from image_sidecar.storage.base import BlobStore

log = structlog.get_logger(__name__)


class ContentNotFound(NotFound):
    """No image holds these bytes (never stored, or taken down already)."""


@dataclass(frozen=True)
class Takedown:
    sha256: str
    image_ids: list[str]  # every image removed: those with the bytes, and look-alikes removed
    lookalike_image_ids: list[str]  # stored look-alikes: removed with `similar`, else named
    urls: list[str]
    tally: DeletionTally
    # Whether the purge webhook took the URLs; None when none is configured.
    cdn_notified: bool | None


async def block_and_expire(
    pool: db.Pool, sha256: str, reason: str | None, lookalikes: list[bytes]
) -> list[TakenDown]:
    """The first, committed step of a takedown (see the module's docstring)."""
    async with db.transaction(pool) as cur:
        held = await blocklist_rows.block_and_expire(cur, sha256, reason, lookalikes)
    if not held:
        raise ContentNotFound(f"no image holds the content {sha256}")
    return held


async def take_down(
    pool: db.Pool,
    store: BlobStore,
    processor: ImageProcessor,
    sha256: str,
    *,
    reason: str | None,
    similar: bool,
    max_distance: int,
    batch_size: int,
    public_base_url: str,
    purge_webhook_url: str | None,
) -> Takedown:
    hashes = await lookalike_hashes(pool, store, processor, sha256)
    held = await block_and_expire(pool, sha256, reason, hashes)
    async with db.transaction(pool) as cur:
        lookalikes = await blocklist_rows.expire_lookalikes(
            cur, hashes, max_distance, remove=similar
        )
        if similar and lookalikes:
            await blocklist_rows.block(
                cur, [image.sha256 for image in lookalikes], f"looks like {sha256}"
            )
    removed = held + lookalikes if similar else held
    sha256s = sorted({image.sha256 for image in removed})
    tally = await delete_expired(pool, store, batch_size=batch_size, sha256s=sha256s)
    # Both forms: the URL as issued, and under today's public base (a CDN moved in since).
    urls = sorted(
        {taken.image_url for taken in removed}
        | {f"{public_base_url}/{taken.image_path}" for taken in removed}
    )
    notified = None
    if purge_webhook_url is not None:
        notified = await webhooks.post_json(
            purge_webhook_url,
            {"event": "takedown", "sha256": sha256, "urls": urls},
            event="takedown",
        )
    log.info(
        "takedown",
        sha256=sha256,
        reason=reason,
        images=len(held),
        lookalikes=len(lookalikes),
        lookalikes_removed=similar,
        cdn_notified=notified,
    )
    return Takedown(
        sha256=sha256,
        image_ids=sorted(str(taken.image_id) for taken in removed),
        lookalike_image_ids=sorted(str(taken.image_id) for taken in lookalikes),
        urls=urls,
        tally=tally,
        cdn_notified=notified,
    )


async def lookalike_hashes(
    pool: db.Pool, store: BlobStore, processor: ImageProcessor, sha256: str
) -> list[bytes]:
    """The hashes a takedown of these bytes blocks, from a stored copy of them; the recorded
    hash alone when no copy can be read or decoded; none when no image holds them."""
    async with db.cursor(pool) as cur:
        holders = await blocklist_rows.holders(cur, sha256)
    for holder in holders:
        try:
            return await processor.lookalike_hashes(await store.read(holder.image_path))
        except SidecarError as exc:
            log.warning("takedown_copy_unreadable", image_path=holder.image_path, error=exc.message)
    return [holder.perceptual_hash for holder in holders[:1] if holder.perceptual_hash]
