"""Settings rows for what the sidecar keeps, reuses, refuses, shares and counts: retention, the
prompt cache, moderation, sharing, metrics (`config/table.py` has where and how it runs)."""

from __future__ import annotations

from image_sidecar.config import kinds
from image_sidecar.config.kinds import Setting

_DAYS = "days"

POLICY: tuple[Setting, ...] = (
    Setting(
        "IMAGE_RETENTION_DAYS",
        "retention.days",
        kinds.whole(_DAYS),
        "30",
        "Days an image lives before the cleanup deletes it (per-upload `retention_days` "
        "overrides).",
    ),
    Setting(
        "IMAGE_CLEANUP_ENABLED",
        "retention.cleanup_enabled",
        kinds.flag(),
        "true",
        "Run the scheduled cleanup inside the service (true/false). Manual runs work either way.",
    ),
    Setting(
        "IMAGE_CLEANUP_CRON",
        "retention.cleanup_cron",
        kinds.cron(),
        "0 2 * * *",
        "When the cleanup runs, in UTC: any standard five-field cron expression (minute hour "
        "day-of-month month day-of-week), or `@hourly`, `@daily`, `@weekly`, `@monthly`, "
        "`@yearly`.",
    ),
    Setting(
        "IMAGE_CLEANUP_BATCH_SIZE",
        "retention.batch_size",
        kinds.whole("images"),
        "500",
        "Images deleted per database transaction during a cleanup or purge.",
    ),
    Setting(
        "IMAGE_ORPHAN_GRACE_SECONDS",
        "retention.orphan_grace_seconds",
        kinds.whole("seconds"),
        "3600",
        "Files without a database row are swept once they are this old (spares uploads in flight).",
    ),
    Setting(
        "IMAGE_SCRUB_CRON",
        "retention.scrub_cron",
        kinds.optional_cron(),
        "0 4 * * *",
        "When the scrub runs, in UTC (cron, as IMAGE_CLEANUP_CRON): each run reads back a slice "
        "of the stored files (the share of the store that IMAGE_SCRUB_CYCLE_DAYS asks for the "
        "time since the last run) and compares them with their records, re-makes damaged "
        "renditions and restores or takes out of service damaged originals; the next run goes "
        "on where it stopped. Daily by default (04:00); empty: never (`image-sidecar scrub` and "
        "`POST /api/admin/scrub` work either way).",
    ),
    Setting(
        "IMAGE_SCRUB_CYCLE_DAYS",
        "retention.scrub_cycle_days",
        kinds.whole("days"),
        "30",
        "The scrub checks the whole store once in this many days. 30: as long as the default "
        "retention, so a daily run reads about what the day stored (the scrub's cost follows "
        "the day's work), and every picture is checked once in its life on average.",
    ),
    Setting(
        "IMAGE_AUDIT_CRON",
        "retention.audit_cron",
        kinds.optional_cron(),
        "0 5 1 * *",
        "When the audit runs, in UTC (cron): the paced walk of the whole store for files that "
        "no row names (put there by hand or by a bug; the nightly cleanup only looks where a "
        "write did not settle). Monthly by default (the 1st, 05:00); a run goes on where the "
        "last one stopped; empty: never (`image-sidecar audit` works either way).",
    ),
    Setting(
        "IMAGE_AUDIT_FILES_PER_SECOND",
        "retention.audit_files_per_second",
        kinds.whole("files a second", low=0),
        "2000",
        "How fast the audit may walk the store (2,000: 10 million files in about 1.4 hours). "
        "0: as fast as the store lists.",
    ),
    Setting(
        "IMAGE_SCRUB_MAX_BYTES_PER_SECOND",
        "retention.scrub_max_bytes_per_second",
        kinds.whole("bytes a second", low=0),
        "50000000",
        "How fast the scrub may read stored files, so that it never starves serving (50 MB/s: "
        "a 100 GB store in about 35 minutes). 0: as fast as the store answers.",
    ),
    Setting(
        "IMAGE_CACHE_CLAIM_SECONDS",
        "cache.claim_seconds",
        kinds.whole("seconds"),
        "120",
        "How long a cache miss's claim on a prompt lasts; if its holder never uploads, the next "
        "caller gets the claim after this.",
    ),
    Setting(
        "IMAGE_GENERATION_COST_USD",
        "cache.generation_costs",
        kinds.costs(),
        "dall-e-3=0.040,default=0.020",
        "Cost of one AI call per `ai_service`, used for cost-saved figures when an upload "
        "carries no `generation_cost_usd`; `default` covers the other services.",
    ),
    Setting(
        "IMAGE_PURGE_WEBHOOK_URL",
        "moderation.purge_webhook_url",
        kinds.optional_http_url(),
        "",
        'Where a takedown POSTs the URLs it removed (JSON `{"event": "takedown", "sha256", '
        '"urls"}`, 3 tries, 5 s each), for a CDN to purge them: images are served `immutable` '
        "for 7 days. Empty: no notification.",
    ),
    Setting(
        "IMAGE_MODERATION_URL",
        "moderation.url",
        kinds.optional_http_url(),
        "",
        "A moderation hook: every upload's bytes (part `image`) and text fields are POSTed to it "
        "as `multipart/form-data` before anything is written. 2xx accepts; 4xx refuses (422 "
        "`rejected_by_moderation`, its JSON `reason` passed on). Empty: no hook. The contract "
        "and an example hook: docs/moderation.md.",
    ),
    Setting(
        "IMAGE_MODERATION_TIMEOUT_SECONDS",
        "moderation.timeout_seconds",
        kinds.seconds(),
        "5",
        "How long the moderation hook may take to answer before it counts as failed.",
    ),
    Setting(
        "IMAGE_MODERATION_FAILURE",
        "moderation.failure",
        kinds.choice("closed", "open"),
        "closed",
        "What an upload gets when the hook fails (5xx, no connection, timeout): `closed` answers "
        "503 `moderation_unavailable` with Retry-After and writes nothing; `open` accepts the "
        "picture, logs and counts it.",
    ),
    Setting(
        "IMAGE_BLOCK_SIMILARITY",
        "moderation.block_similarity",
        kinds.whole("bits", low=0, high=128),
        "56",
        "How close (bits of 256 that differ between perceptual hashes) an upload may be to a "
        "picture taken down, or to a crop of it, and still be refused as its look-alike (422 "
        "`blocked_content`). Measured: edited copies (resized, JPEG, brightness, crops up to "
        "5%, noise) 0-44 bits, unrelated pictures 84 or more; 0 refuses identical hashes only. "
        "docs/moderation.md says how to choose it.",
    ),
    Setting(
        "IMAGE_SHARE_BASE_URL",
        "sharing.base_url",
        kinds.optional_http_url(),
        "",
        "The public origin of the share pages (`/s/...`), e.g. `https://pictures.example.com`: "
        "the links `POST /api/shares` answers and the absolute URLs of link previews. Empty: "
        "the origin the request came in on (set it in every deployment: the API is private).",
    ),
    Setting(
        "IMAGE_SHARE_DAYS",
        "sharing.default_days",
        kinds.whole(_DAYS),
        "30",
        "The lifetime of a share link unless the call says otherwise. While a share lives its "
        "images are kept past their own expiry.",
    ),
    Setting(
        "IMAGE_SHARE_MAX_DAYS",
        "sharing.max_days",
        kinds.whole(_DAYS),
        "365",
        "The longest lifetime a share link may ask for.",
    ),
    Setting(
        "IMAGE_METRIC_AI_SERVICES",
        "metrics.ai_services",
        kinds.label_set("a comma-separated list of AI service names"),
        "dall-e-2,dall-e-3,gpt-image-1,imagen,midjourney,stable-diffusion,flux",
        "The `ai_service` values the metrics name (any case); others count as `other`, so that "
        "no client can add time series without bound.",
    ),
    Setting(
        "IMAGE_METRIC_ART_STYLES",
        "metrics.art_styles",
        kinds.label_set("a comma-separated list of art styles"),
        "watercolor,oil painting,pixel art,anime,cartoon,sketch,photorealistic,comic,3d render",
        "The `art_style` values the metrics name (any case); others count as `other`.",
    ),
    Setting(
        "IMAGE_METRICS_REFRESH_SECONDS",
        "metrics.refresh_seconds",
        kinds.seconds(),
        "15",
        "How often the storage and live-image gauges are read from the database.",
    ),
)
