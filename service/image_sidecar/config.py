"""Every setting of the sidecar, read once from the environment (and `.env`), validated.

`SETTINGS` is the table of variables (name, default, what it expects, help); `load_config` turns
them into a frozen `Config` of one section per concern. A bad value stops start-up with a
`ConfigError` naming the variable and what it expects.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, cast

from cronsim import CronSim, CronSimError
from dotenv import dotenv_values

StorageType = Literal["filesystem", "s3"]


class ConfigError(ValueError):
    """A setting is missing or malformed: which variable, its value, and what it expects."""

    def __init__(self, name: str, value: str, expects: str, detail: str = "") -> None:
        if value:
            reason = f" ({detail})" if detail else ""
            problem = f"{name}={value!r} is not valid{reason}"
        else:
            problem = f"{name} is not set"
        super().__init__(f"{problem}: expected {expects}")
        self.name = name
        self.expects = expects


class _Detailed(ValueError):
    """A parser's refusal with a reason worth showing next to what the setting expects."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError
    return value


# Pillow refuses images over this many pixels by itself (its decompression bomb guard).
PILLOW_PIXEL_LIMIT = 89_478_485


def _max_pixels(raw: str) -> int:
    value = int(raw)
    if not 0 < value <= PILLOW_PIXEL_LIMIT:
        raise ValueError
    return value


def _rendition_formats(raw: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    if not set(formats) <= {"webp", "avif"}:
        raise ValueError
    return formats


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _storage_type(raw: str) -> StorageType:
    value = raw.strip().lower()
    if value not in ("filesystem", "s3"):
        raise ValueError
    return cast(StorageType, value)


def _optional(raw: str) -> str | None:
    return raw.strip() or None


def _optional_http_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError
    return value


def _public_base_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not (value.startswith("/") or value.startswith(("http://", "https://"))):
        raise ValueError
    return value


_CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronSchedule:
    """A standard five-field cron expression, always evaluated in UTC (by cronsim)."""

    expression: str

    @property
    def fields(self) -> str:
        return _CRON_ALIASES.get(self.expression.lower(), self.expression)

    def matches(self, minute: datetime) -> bool:
        """Whether the schedule fires in the minute that starts at `minute` (UTC, aware)."""
        start = minute.replace(second=0, microsecond=0)
        return self.next_after(start - timedelta(seconds=1)) == start

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after `moment` (UTC, aware)."""
        return cast(datetime, next(CronSim(self.fields, moment)))


def _cron(raw: str) -> CronSchedule:
    schedule = CronSchedule(" ".join(raw.split()))
    if len(schedule.fields.split(" ")) != 5:
        raise _Detailed(f"{len(schedule.fields.split())} fields")
    try:
        CronSim(schedule.fields, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise _Detailed(str(exc).lower()) from None
    return schedule


@dataclass(frozen=True)
class GenerationCosts:
    """What one AI call costs per service, in USD; `default` covers services not listed."""

    per_service: Mapping[str, Decimal]
    default: Decimal

    def for_service(self, ai_service: str | None) -> Decimal:
        return self.per_service.get(ai_service or "", self.default)


def _generation_costs(raw: str) -> GenerationCosts:
    costs: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        service, sep, amount = item.partition("=")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            value = Decimal("NaN")
        if not sep or not service.strip() or not value.is_finite() or value < 0:
            raise _Detailed(f"bad entry {item!r}")
        costs[service.strip()] = value
    default = costs.pop("default", Decimal(0))
    return GenerationCosts(per_service=costs, default=default)


@dataclass(frozen=True)
class Setting:
    """One environment variable: where it goes, its default, what it expects, its help text."""

    name: str
    section: str
    field: str
    default: str
    expects: str
    help: str
    parse: Callable[[str], Any] = str


_DAYS = "a positive whole number of days"
_SECONDS = "a positive number of seconds"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        "database",
        "url",
        "",
        "a PostgreSQL URL",
        "PostgreSQL URL (postgresql://user:pass@host:5432/db). Required for `serve` and `migrate`; "
        "`dev` starts an embedded PostgreSQL when it is empty.",
        _optional,
    ),
    Setting(
        "DATABASE_LISTEN_URL",
        "database",
        "listen_url",
        "",
        "a PostgreSQL URL",
        "A direct connection (not through PgBouncer in transaction mode) for LISTEN, which wakes "
        "waiting cache lookups at once. Empty: DATABASE_URL. Without working notifications the "
        "waits poll every 0.25 s instead.",
        _optional,
    ),
    Setting(
        "DATABASE_POOL_SIZE",
        "database",
        "pool_size",
        "10",
        "a positive whole number of connections",
        "Most connections one sidecar process holds.",
        _positive_int,
    ),
    Setting(
        "DATABASE_TIMEOUT_SECONDS",
        "database",
        "timeout_seconds",
        "5",
        _SECONDS,
        "How long a request waits for a database connection or statement before answering 503.",
        _positive_float,
    ),
    Setting(
        "IMAGE_STORAGE_TYPE",
        "storage",
        "type",
        "filesystem",
        "filesystem or s3",
        "Where image bytes live: `filesystem` (IMAGE_STORAGE_BASE_DIR) or `s3` (an "
        "S3-compatible bucket: AWS S3, MinIO, R2).",
        _storage_type,
    ),
    Setting(
        "IMAGE_STORAGE_BASE_DIR",
        "storage",
        "base_dir",
        "./public/generated-images",
        "a directory path",
        "Directory that holds the image files (filesystem storage).",
        Path,
    ),
    Setting(
        "IMAGE_PUBLIC_BASE_URL",
        "storage",
        "public_base_url",
        "/generated-images",
        "an absolute path such as /generated-images or an http(s) URL",
        "Prefix of every image_url: this service's own static route by default, or a CDN / nginx "
        "URL such as https://cdn.example.com/generated-images.",
        _public_base_url,
    ),
    Setting(
        "IMAGE_MAX_UPLOAD_BYTES",
        "storage",
        "max_upload_bytes",
        "10485760",
        "a positive whole number of bytes",
        "Largest accepted image in bytes (default 10 MiB); larger uploads get 413.",
        _positive_int,
    ),
    Setting(
        "IMAGE_MAX_PIXELS",
        "storage",
        "max_pixels",
        "40000000",
        "a whole number of pixels from 1 to 89478485",
        "Most pixels (width x height) an upload may have; more is 413 too_many_pixels, read from "
        "the header before anything is decoded. At most Pillow's own bomb guard (89,478,485).",
        _max_pixels,
    ),
    Setting(
        "IMAGE_RENDITION_FORMATS",
        "storage",
        "rendition_formats",
        "webp,avif",
        "a comma-separated list of webp and avif, or empty",
        "Formats of the thumb and large renditions made at upload (AVIF only where the installed "
        "Pillow can encode it). Empty: no renditions (e.g. a CDN resizes instead).",
        _rendition_formats,
    ),
    Setting(
        "IMAGE_PROCESSING_WORKERS",
        "storage",
        "processing_workers",
        "2",
        "a positive whole number",
        "Threads that decode uploads and make their renditions: the most image work at once, "
        "which bounds its memory and CPU.",
        _positive_int,
    ),
    Setting(
        "IMAGE_MIN_FREE_BYTES",
        "storage",
        "min_free_bytes",
        "52428800",
        "a positive whole number of bytes",
        "Free space under which `/readyz` fails (default 50 MiB, five of the largest default "
        "uploads), so a load balancer stops sending uploads that would get 507.",
        _positive_int,
    ),
    Setting(
        "IMAGE_S3_BUCKET",
        "s3",
        "bucket",
        "",
        "a bucket name",
        "Bucket of the s3 storage type.",
        _optional,
    ),
    Setting(
        "IMAGE_S3_ENDPOINT_URL",
        "s3",
        "endpoint_url",
        "",
        "an http(s) URL",
        "Endpoint of an S3-compatible service (MinIO, R2); empty for AWS S3.",
        _optional,
    ),
    Setting(
        "IMAGE_S3_REGION",
        "s3",
        "region",
        "us-east-1",
        "a region name",
        "Region of the bucket.",
    ),
    Setting(
        "IMAGE_S3_ACCESS_KEY_ID",
        "s3",
        "access_key_id",
        "",
        "an access key id",
        "Access key for the bucket; empty to use the standard AWS credential chain "
        "(instance role, ~/.aws).",
        _optional,
    ),
    Setting(
        "IMAGE_S3_SECRET_ACCESS_KEY",
        "s3",
        "secret_access_key",
        "",
        "a secret key",
        "Secret key matching IMAGE_S3_ACCESS_KEY_ID.",
        _optional,
    ),
    Setting(
        "IMAGE_SIDECAR_HOST",
        "server",
        "host",
        "127.0.0.1",
        "an address to listen on",
        "Address to listen on. Anything but a loopback address requires IMAGE_SIDECAR_API_TOKEN.",
    ),
    Setting(
        "IMAGE_SIDECAR_PORT",
        "server",
        "port",
        "8080",
        "a TCP port between 1 and 65535",
        "TCP port to listen on.",
        _port,
    ),
    Setting(
        "IMAGE_SIDECAR_API_TOKEN",
        "server",
        "api_token",
        "",
        "a secret token",
        "Bearer token required on every write endpoint when set.",
        _optional,
    ),
    Setting(
        "IMAGE_SIDECAR_BODY_TIMEOUT_SECONDS",
        "server",
        "body_timeout_seconds",
        "30",
        _SECONDS,
        "Time allowed to receive a request body (an upload); a slower client gets 408.",
        _positive_float,
    ),
    Setting(
        "IMAGE_SIDECAR_SHUTDOWN_SECONDS",
        "server",
        "shutdown_seconds",
        "3",
        _SECONDS,
        "On SIGTERM or Ctrl-C, how long requests in flight may take to finish before they are "
        "cancelled (waiting lookups are answered at once). Keep it under the orchestrator's "
        "grace period.",
        _positive_float,
    ),
    Setting(
        "IMAGE_SIDECAR_DEV_DATA_DIR",
        "server",
        "dev_data_dir",
        "./var",
        "a directory path",
        "Where `image-sidecar dev` keeps its embedded PostgreSQL cluster.",
        Path,
    ),
    Setting(
        "IMAGE_RETENTION_DAYS",
        "retention",
        "days",
        "30",
        _DAYS,
        "Days an image lives before the cleanup deletes it (per-upload retention_days overrides).",
        _positive_int,
    ),
    Setting(
        "IMAGE_CLEANUP_ENABLED",
        "retention",
        "cleanup_enabled",
        "true",
        "true or false",
        "Run the scheduled cleanup inside the service (true/false). Manual runs work either way.",
        _boolean,
    ),
    Setting(
        "IMAGE_CLEANUP_CRON",
        "retention",
        "cleanup_cron",
        "0 2 * * *",
        "a five-field cron expression such as '0 2 * * *', or @hourly, @daily, @weekly, @monthly",
        "When the cleanup runs, in UTC: any standard five-field cron expression (minute hour "
        "day-of-month month day-of-week), or @hourly, @daily, @weekly, @monthly, @yearly.",
        _cron,
    ),
    Setting(
        "IMAGE_CLEANUP_BATCH_SIZE",
        "retention",
        "batch_size",
        "500",
        "a positive whole number of images",
        "Images deleted per database transaction during a cleanup or purge.",
        _positive_int,
    ),
    Setting(
        "IMAGE_ORPHAN_GRACE_SECONDS",
        "retention",
        "orphan_grace_seconds",
        "3600",
        "a positive whole number of seconds",
        "Files without a database row are swept once they are this old (spares uploads in flight).",
        _positive_int,
    ),
    Setting(
        "IMAGE_CACHE_CLAIM_SECONDS",
        "cache",
        "claim_seconds",
        "120",
        "a positive whole number of seconds",
        "How long a cache miss's claim on a prompt lasts; if its holder never uploads, the next "
        "caller gets the claim after this.",
        _positive_int,
    ),
    Setting(
        "IMAGE_GENERATION_COST_USD",
        "cache",
        "generation_costs",
        "dall-e-3=0.040,default=0.020",
        "a list like dall-e-3=0.040,default=0.020 (non-negative US dollars)",
        "Cost of one AI call per ai_service, used for cost-saved figures when an upload carries "
        "no generation_cost_usd; `default` covers the other services.",
        _generation_costs,
    ),
    Setting(
        "IMAGE_PURGE_WEBHOOK_URL",
        "moderation",
        "purge_webhook_url",
        "",
        "an http(s) URL",
        "Where a takedown POSTs the URLs it removed (JSON), for a CDN to purge them: images are "
        "served immutable for 7 days. Empty: no notification.",
        _optional_http_url,
    ),
    Setting(
        "IMAGE_SHARE_BASE_URL",
        "sharing",
        "base_url",
        "",
        "an http(s) URL",
        "The public origin of the share pages (/s/...), e.g. https://pictures.example.com: the "
        "links POST /api/shares answers and the absolute URLs of link previews. Empty: the "
        "origin the request came in on.",
        _optional_http_url,
    ),
    Setting(
        "IMAGE_SHARE_DAYS",
        "sharing",
        "default_days",
        "30",
        "a whole number of days, at least 1",
        "The lifetime of a share link unless the call says otherwise. While a share lives its "
        "images are kept past their own expiry.",
        _positive_int,
    ),
    Setting(
        "IMAGE_SHARE_MAX_DAYS",
        "sharing",
        "max_days",
        "365",
        "a whole number of days, at least 1",
        "The longest lifetime a share link may ask for.",
        _positive_int,
    ),
    Setting(
        "IMAGE_METRICS_REFRESH_SECONDS",
        "metrics",
        "refresh_seconds",
        "15",
        _SECONDS,
        "How often the storage and live-image gauges are read from the database.",
        _positive_float,
    ),
)


@dataclass(frozen=True)
class ServerSettings:
    host: str
    port: int
    api_token: str | None
    dev_data_dir: Path
    body_timeout_seconds: float = 30.0
    shutdown_seconds: float = 3.0


@dataclass(frozen=True)
class DatabaseSettings:
    url: str | None
    pool_size: int
    timeout_seconds: float
    listen_url: str | None = None


@dataclass(frozen=True)
class S3Settings:
    bucket: str | None
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None


@dataclass(frozen=True)
class StorageSettings:
    type: StorageType
    base_dir: Path
    public_base_url: str
    max_upload_bytes: int
    s3: S3Settings
    min_free_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 40_000_000
    processing_workers: int = 2
    rendition_formats: tuple[str, ...] = ("webp", "avif")


@dataclass(frozen=True)
class RetentionSettings:
    days: int = 30
    cleanup_enabled: bool = True
    cleanup_cron: CronSchedule = CronSchedule("0 2 * * *")
    batch_size: int = 500
    orphan_grace_seconds: int = 3600


@dataclass(frozen=True)
class CacheSettings:
    claim_seconds: int
    generation_costs: GenerationCosts


@dataclass(frozen=True)
class ModerationSettings:
    purge_webhook_url: str | None = None


@dataclass(frozen=True)
class SharingSettings:
    base_url: str | None = None
    default_days: int = 30
    max_days: int = 365


@dataclass(frozen=True)
class MetricsSettings:
    refresh_seconds: float


@dataclass(frozen=True)
class Config:
    server: ServerSettings
    database: DatabaseSettings
    storage: StorageSettings
    retention: RetentionSettings
    cache: CacheSettings
    metrics: MetricsSettings
    moderation: ModerationSettings = ModerationSettings()
    sharing: SharingSettings = SharingSettings()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "storage": StorageSettings,
    "s3": S3Settings,
    "retention": RetentionSettings,
    "cache": CacheSettings,
    "metrics": MetricsSettings,
    "moderation": ModerationSettings,
    "sharing": SharingSettings,
}


def _check_rules(config: Config, *, listening: bool) -> None:
    """Rules that involve more than one setting."""
    s3 = config.storage.s3
    if config.storage.type == "s3" and s3.bucket is None:
        raise ConfigError("IMAGE_S3_BUCKET", "", "a bucket name when IMAGE_STORAGE_TYPE=s3")
    if (s3.access_key_id is None) != (s3.secret_access_key is None):
        unset = (
            "IMAGE_S3_ACCESS_KEY_ID" if s3.access_key_id is None else "IMAGE_S3_SECRET_ACCESS_KEY"
        )
        raise ConfigError(
            unset,
            "",
            "IMAGE_S3_ACCESS_KEY_ID and IMAGE_S3_SECRET_ACCESS_KEY to be set together",
        )
    if config.sharing.default_days > config.sharing.max_days:
        raise ConfigError(
            "IMAGE_SHARE_DAYS",
            str(config.sharing.default_days),
            f"at most IMAGE_SHARE_MAX_DAYS ({config.sharing.max_days})",
        )
    if listening and config.server.api_token is None and not is_loopback(config.server.host):
        raise ConfigError(
            "IMAGE_SIDECAR_API_TOKEN",
            "",
            f"a token, since IMAGE_SIDECAR_HOST={config.server.host!r} is not a loopback address",
        )


def load_config(environ: Mapping[str, str], *, listening: bool = True) -> Config:
    """Build a Config from a mapping (the process environment, or a dict in tests).
    `listening=False` for the commands that open no port (migrate, cleanup, renditions): they
    need no API token wherever IMAGE_SIDECAR_HOST points."""
    values: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    for setting in SETTINGS:
        raw = environ.get(setting.name, setting.default)
        try:
            values[setting.section][setting.field] = setting.parse(raw)
        except _Detailed as exc:
            raise ConfigError(setting.name, raw, setting.expects, str(exc)) from None
        except ValueError:
            raise ConfigError(setting.name, raw, setting.expects) from None
    values["storage"]["s3"] = S3Settings(**values.pop("s3"))
    config = Config(**{name: _SECTIONS[name](**fields) for name, fields in values.items()})
    _check_rules(config, listening=listening)
    return config


def load_environment(dotenv_path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """The process environment over the values of `.env` (the environment wins)."""
    from_file = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    return {**from_file, **os.environ}
