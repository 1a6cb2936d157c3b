"""Typed application keys: every resource the app factory wires, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from image_sidecar.config import Config

if TYPE_CHECKING:
    from image_sidecar.db import Pool
    from image_sidecar.db.notify import NotificationHub
    from image_sidecar.images.pool import ImageProcessor
    from image_sidecar.images.renditions import RenditionMaker
    from image_sidecar.metrics import SidecarMetrics
    from image_sidecar.safety.lookalikes import LookalikeBlocklist
    from image_sidecar.safety.moderation import ModerationHook
    from image_sidecar.storage.base import BlobStore

config_key = web.AppKey("config", Config)
db_pool_key: web.AppKey[Pool] = web.AppKey("db_pool")
blob_store_key: web.AppKey[BlobStore] = web.AppKey("blob_store")
notification_hub_key: web.AppKey[NotificationHub] = web.AppKey("notification_hub")
metrics_key: web.AppKey[SidecarMetrics] = web.AppKey("metrics")
image_processor_key: web.AppKey[ImageProcessor] = web.AppKey("image_processor")
rendition_maker_key: web.AppKey[RenditionMaker] = web.AppKey("rendition_maker")
moderation_hook_key: web.AppKey[ModerationHook | None] = web.AppKey("moderation_hook")
lookalike_blocklist_key: web.AppKey[LookalikeBlocklist] = web.AppKey("lookalike_blocklist")
