"""The one table of settings: each environment variable's place, kind, default and help.

Everything else is generated from it by `python -m image_sidecar.config.generate` (the
dataclasses of config/sections.py, docs/configuration.md and .env.example), and a test fails
when a generated file is stale. To add a setting: add a row here, run the command, use the
new field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from image_sidecar.config import kinds
from image_sidecar.config.kinds import PILLOW_PIXEL_LIMIT, Kind

_DAYS = "days"


@dataclass(frozen=True)
class Setting:
    """One environment variable: where it goes (`section.field`), its kind, default and help."""

    name: str
    where: str
    kind: Kind
    default: str
    help: str

    @property
    def section(self) -> str:
        return self.where.partition(".")[0]

    @property
    def field(self) -> str:
        return self.where.partition(".")[2]

    @property
    def expects(self) -> str:
        return self.kind.expects


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        "database.url",
        kinds.optional_text("a PostgreSQL URL"),
        "",
        "PostgreSQL URL (postgresql://user:pass@host:5432/db). Required for `serve` and "
        "`migrate`; `dev` starts an embedded PostgreSQL when it is empty.",
    ),
    Setting(
        "DATABASE_LISTEN_URL",
        "database.listen_url",
        kinds.optional_text("a PostgreSQL URL"),
        "",
        "A direct connection for `LISTEN` (not through PgBouncer in transaction mode, which does "
        "not deliver notifications), so that waiting cache lookups wake at once. Empty: "
        "`DATABASE_URL`. When notifications do not arrive (checked at each connect), waits poll "
        "every 0.25 s instead.",
    ),
    Setting(
        "DATABASE_POOL_SIZE",
        "database.pool_size",
        kinds.whole("connections"),
        "10",
        "Most connections a replica holds for requests, shared out among its workers (at least "
        "one each; each worker also holds one for LISTEN).",
    ),
    Setting(
        "DATABASE_TIMEOUT_SECONDS",
        "database.timeout_seconds",
        kinds.seconds(),
        "5",
        "How long a request waits for a database connection or statement before answering 503.",
    ),
    Setting(
        "IMAGE_STORAGE_TYPE",
        "storage.type",
        kinds.choice("filesystem", "s3"),
        "filesystem",
        "Where image bytes live: `filesystem` (`IMAGE_STORAGE_BASE_DIR`) or `s3` (an "
        "S3-compatible bucket: AWS S3, MinIO, R2).",
    ),
    Setting(
        "IMAGE_STORAGE_BASE_DIR",
        "storage.base_dir",
        kinds.directory(),
        "./public/generated-images",
        "Directory that holds the image files (filesystem storage).",
    ),
    Setting(
        "IMAGE_PUBLIC_BASE_URL",
        "storage.public_base_url",
        kinds.url_prefix(),
        "/generated-images",
        "Prefix of every `image_url`: this service's own static route by default, or a CDN / "
        "nginx URL such as `https://cdn.example.com/generated-images`.",
    ),
    Setting(
        "IMAGE_MAX_UPLOAD_BYTES",
        "storage.max_upload_bytes",
        kinds.whole("bytes"),
        "10485760",
        "Largest accepted image in bytes (default 10 MiB); larger uploads get 413.",
    ),
    Setting(
        "IMAGE_MAX_PIXELS",
        "storage.max_pixels",
        kinds.whole("pixels", high=PILLOW_PIXEL_LIMIT),
        "40000000",
        "Most pixels (width x height) an upload may have; more is 413 `too_many_pixels`, read "
        "from the header before anything is decoded. At most Pillow's own bomb guard "
        "(89,478,485).",
    ),
    Setting(
        "IMAGE_RENDITION_FORMATS",
        "storage.rendition_formats",
        kinds.subset("webp", "avif"),
        "webp,avif",
        "Formats of the `thumb` and `large` renditions made at upload (AVIF only where the "
        "installed Pillow can encode it). Empty: no renditions and no placeholder (e.g. a CDN "
        "resizes instead).",
    ),
    Setting(
        "IMAGE_RENDITIONS_AT_UPLOAD",
        "storage.renditions_at_upload",
        kinds.subset("large.webp", "thumb.webp", "large.avif", "thumb.avif"),
        "large.webp",
        "Renditions an upload makes from its own decode, before it answers: those every judge "
        "screen loads. The others are made when first asked for (then `size_bytes` is null "
        "until made), once, and stored beside the original. Empty: all on demand.",
    ),
    Setting(
        "IMAGE_PROCESSING_WORKERS",
        "storage.processing_workers",
        kinds.whole("processes"),
        "2",
        "Processes of a replica that decode uploads and make renditions (shared out among its "
        "workers, at least one each), at a lower CPU priority than the serving processes: the "
        "most picture work at once, which bounds its memory and CPU.",
    ),
    Setting(
        "IMAGE_PROCESSING_MAX_WAIT_SECONDS",
        "storage.processing_max_wait_seconds",
        kinds.seconds(),
        "10",
        "When the picture work already queued would keep an upload or a rendition waiting "
        "longer than this, it is answered 503 `busy` with Retry-After at once, nothing written.",
    ),
    Setting(
        "IMAGE_MIN_FREE_BYTES",
        "storage.min_free_bytes",
        kinds.whole("bytes"),
        "52428800",
        "Free space under which `/readyz` fails with the reason (default 50 MiB, five of the "
        "largest default uploads), so a load balancer stops sending uploads that would get 507.",
    ),
    Setting(
        "IMAGE_S3_BUCKET",
        "s3.bucket",
        kinds.optional_text("a bucket name"),
        "",
        "Bucket of the s3 storage type (required with it).",
    ),
    Setting(
        "IMAGE_S3_ENDPOINT_URL",
        "s3.endpoint_url",
        kinds.optional_text("an http(s) URL"),
        "",
        "Endpoint of an S3-compatible service (MinIO, R2); empty for AWS S3.",
    ),
    Setting(
        "IMAGE_S3_REGION",
        "s3.region",
        kinds.text("a region name"),
        "us-east-1",
        "Region of the bucket.",
    ),
    Setting(
        "IMAGE_S3_ACCESS_KEY_ID",
        "s3.access_key_id",
        kinds.optional_text("an access key id"),
        "",
        "Access key for the bucket; empty to use the standard AWS credential chain (instance "
        "role, `~/.aws`).",
    ),
    Setting(
        "IMAGE_S3_SECRET_ACCESS_KEY",
        "s3.secret_access_key",
        kinds.optional_text("a secret key"),
        "",
        "Secret key matching `IMAGE_S3_ACCESS_KEY_ID`.",
    ),
    Setting(
        "IMAGE_SIDECAR_HOST",
        "server.host",
        kinds.text("an address to listen on"),
        "127.0.0.1",
        "Address to listen on. Anything but a loopback address requires `IMAGE_SIDECAR_API_TOKEN`.",
    ),
    Setting(
        "IMAGE_SIDECAR_PORT",
        "server.port",
        kinds.whole("", high=65535, expects="a TCP port between 1 and 65535"),
        "8080",
        "TCP port to listen on.",
    ),
    Setting(
        "IMAGE_SIDECAR_WORKERS",
        "server.workers",
        kinds.processes(),
        "auto",
        "Worker processes that answer on the one host:port (`serve` and `dev`; `--workers` "
        "overrides): `auto` is one per core. A worker that dies is replaced; each sizes its "
        "database pool and picture processes so that the replica stays within "
        "`DATABASE_POOL_SIZE` and `IMAGE_PROCESSING_WORKERS`; `/metrics` answers for them all.",
    ),
    Setting(
        "IMAGE_SIDECAR_API_TOKEN",
        "server.api_token",
        kinds.optional_text("a secret token"),
        "",
        "Bearer token required on every write endpoint when set.",
    ),
    Setting(
        "IMAGE_SIDECAR_BODY_TIMEOUT_SECONDS",
        "server.body_timeout_seconds",
        kinds.seconds(),
        "30",
        "Time allowed to receive a request body (an upload); a slower client gets 408 "
        "`request_timeout` and its connection is closed.",
    ),
    Setting(
        "IMAGE_SIDECAR_SHUTDOWN_SECONDS",
        "server.shutdown_seconds",
        kinds.seconds(),
        "3",
        "On SIGTERM or Ctrl-C, how long requests in flight may take before they are cancelled; "
        "waiting lookups are answered at once. Keep it under the orchestrator's grace period "
        "(compose: 10 s, Kubernetes: 30 s).",
    ),
    Setting(
        "IMAGE_SIDECAR_DEV_DATA_DIR",
        "server.dev_data_dir",
        kinds.directory(),
        "./var",
        "Where `image-sidecar dev` keeps its embedded PostgreSQL cluster.",
    ),
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
        "5%, noise) 0-44, unrelated pictures 72 or more; 0 refuses identical hashes only. "
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

BY_NAME = {setting.name: setting for setting in SETTINGS}

# Sections in the order Config holds them; `s3` is a part of `storage`, not of Config.
SECTIONS = (
    "server",
    "database",
    "storage",
    "retention",
    "cache",
    "metrics",
    "moderation",
    "sharing",
)
NESTED = {"s3": "storage"}


def class_name(section: str) -> str:
    """`storage` -> `StorageSettings`: the dataclass of a section."""
    return f"{section[0].upper()}{section[1:]}Settings"


def default(name: str) -> Any:
    """The parsed default of a setting: what a section's field holds when nothing is set."""
    setting = BY_NAME[name]
    return setting.kind.parse(setting.default)
