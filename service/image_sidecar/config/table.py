"""The one table of settings: each environment variable's place, kind, default and help.

Everything else is generated from it by `python -m image_sidecar.config.generate` (the
dataclasses of config/sections.py, docs/configuration.md and .env.example), and a test fails
when a generated file is stale. To add a setting: add a row here (where and how the sidecar
runs) or in `policy.py` (what it keeps, reuses, refuses, shares and counts), run the command,
use the new field.
"""

from __future__ import annotations

from typing import Any

from image_sidecar.config import kinds
from image_sidecar.config.kinds import PILLOW_PIXEL_LIMIT, Setting
from image_sidecar.config.policy import POLICY

# Where and how the sidecar runs; what it keeps, reuses, refuses, shares and counts is POLICY.
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
        "How long a request waits for a database connection or statement before answering 503; "
        "PostgreSQL cancels a statement a second later (each carries its `statement_timeout`), "
        "so nothing the sidecar gave up on goes on running.",
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
        "IMAGE_WEB_READY_MAX_BYTES",
        "storage.web_ready_max_bytes",
        kinds.whole("bytes", low=0),
        "300000",
        "A WebP original no larger than the `large` size (1024 px), upright, without a colour "
        "profile, and at most this many bytes is its own `large` WebP: a link of the original "
        "(a hard link on disk, a server-side copy on S3), never re-encoded. 300 KB: above what "
        "the AI services' WebP output weighs at quality 90 (100-250 KB a 1024 px picture), at "
        "most a fifth of the PNG the same picture would be. Above about 100 KB a web-ready "
        "original is served at more bytes than an encoding at the sidecar's quality 80 would "
        "give (72 KB on the benchmark's 1024 px pictures): lower the budget where players' "
        "bytes cost more than the encoding's CPU (20 ms an upload), or ask the AI service for "
        "quality 80 (docs/node-client.md). 0: every `large` is encoded.",
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
        "25",
        "When the picture work already queued would keep an upload or a rendition waiting "
        "longer than this, it is answered 503 `busy` with Retry-After at once, nothing written. "
        "Keep it under the game server's upload timeout (the Node client's `uploadTimeoutMs`, "
        "30 s), less the upload's own second or two: a round's uploads arrive together, and "
        "waiting a few seconds is better than a 503 the game server retries.",
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
        "overrides): `auto` is one per CPU the container grants (its cgroup's CPU quota rounded "
        "up, else the CPUs the process may run on), no more than its memory limit holds "
        "(docs/operations.md). A worker that dies is replaced; each sizes its "
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
    *POLICY,
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
