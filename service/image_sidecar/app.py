"""The aiohttp application factory."""

from __future__ import annotations

from aiohttp import web

from image_sidecar import db, storage
from image_sidecar.api.auth import auth_middleware
from image_sidecar.api.errors import error_middleware
from image_sidecar.api.gallery import setup_templates
from image_sidecar.api.guards import request_guard
from image_sidecar.api.routes import setup_routes
from image_sidecar.appkeys import config_key, lookalike_blocklist_key, metrics_key
from image_sidecar.config import Config
from image_sidecar.db.notify import notifications_context, release_waiters_on_shutdown
from image_sidecar.images.pool import imaging_context
from image_sidecar.images.renditions import rendition_maker_context
from image_sidecar.lifecycle.scheduler import scheduler_context
from image_sidecar.log import request_log_middleware, tag_response
from image_sidecar.metrics import SidecarMetrics, metrics_context
from image_sidecar.safety.lookalikes import LookalikeBlocklist
from image_sidecar.safety.moderation import moderation_context
from image_sidecar.tracing import tracing_context, tracing_middleware


def create_app(config: Config) -> web.Application:
    app = web.Application(
        # The error middleware sits inside the request log so the log sees the final status,
        # and outside the guard and auth so their refusals are rendered as JSON.
        middlewares=[
            tracing_middleware,
            request_log_middleware,
            error_middleware,
            request_guard,
            auth_middleware,
        ],
    )
    app[config_key] = config
    app[metrics_key] = SidecarMetrics(config.metrics.ai_services, config.metrics.art_styles)
    app[lookalike_blocklist_key] = LookalikeBlocklist(config.moderation.block_similarity)
    app.cleanup_ctx.append(tracing_context)  # before the pool: its SQL is traced
    app.cleanup_ctx.append(db.pool_context)  # first: it refuses a schema that is behind
    app.cleanup_ctx.append(notifications_context)
    app.cleanup_ctx.append(metrics_context)
    app.cleanup_ctx.append(storage.store_context)
    app.cleanup_ctx.append(imaging_context)
    app.cleanup_ctx.append(moderation_context)
    app.cleanup_ctx.append(rendition_maker_context)  # after the pool, the store and imaging
    app.cleanup_ctx.append(scheduler_context)  # last: it needs the pool and the store
    app.on_shutdown.append(release_waiters_on_shutdown)
    app.on_response_prepare.append(tag_response)
    setup_templates(app)
    setup_routes(app)
    return app
