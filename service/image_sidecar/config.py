"""Every setting of the sidecar, read once from the environment (and `.env`), validated."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from image_sidecar.cron import CronSpec, parse_cron


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _storage_type(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("filesystem", "s3"):
        raise ValueError("must be filesystem or s3")
    return value


def _optional(raw: str) -> str | None:
    return raw.strip() or None


def _public_base_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not (value.startswith("/") or value.startswith(("http://", "https://"))):
        raise ValueError("must be an absolute path such as /generated-images or an http(s) URL")
    return value


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
            raise ValueError(
                f"must be a list like dall-e-3=0.040,default=0.020 (bad entry {item!r})"
            )
        costs[service.strip()] = value
    default = costs.pop("default", Decimal(0))
    return GenerationCosts(per_service=costs, default=default)


@dataclass(frozen=True)
class Setting:
    """One environment variable: its default, its help text and how to parse it."""

    name: str
    field: str
    default: str
    help: str
    parse: Callable[[str], Any] = str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        "database_url",
        "",
        "PostgreSQL URL (postgresql://user:pass@host:5432/db). Required for `serve` and `migrate`; "
        "`dev` starts an embedded PostgreSQL when it is empty.",
        _optional,
    ),
    Setting(
        "DATABASE_POOL_SIZE",
        "database_pool_size",
        "10",
        "Most connections one sidecar process holds.",
        _positive_int,
    ),
    Setting(
        "DATABASE_TIMEOUT_SECONDS",
        "database_timeout_seconds",
        "5",
        "How long a request waits for a database connection or statement before answering 503.",
        _positive_float,
    ),
    Setting(
        "IMAGE_STORAGE_BASE_DIR",
        "storage_base_dir",
        "./public/generated-images",
        "Directory that holds the image files (filesystem storage).",
        Path,
    ),
    Setting(
        "IMAGE_STORAGE_TYPE",
        "storage_type",
        "filesystem",
        "Where image bytes live: `filesystem` (IMAGE_STORAGE_BASE_DIR) or `s3` (an "
        "S3-compatible bucket: AWS S3, MinIO, R2).",
        _storage_type,
    ),
    Setting("IMAGE_S3_BUCKET", "s3_bucket", "", "Bucket of the s3 storage type.", _optional),
    Setting(
        "IMAGE_S3_ENDPOINT_URL",
        "s3_endpoint_url",
        "",
        "Endpoint of an S3-compatible service (MinIO, R2); empty for AWS S3.",
        _optional,
    ),
    Setting("IMAGE_S3_REGION", "s3_region", "us-east-1", "Region of the bucket."),
    Setting(
        "IMAGE_S3_ACCESS_KEY_ID",
        "s3_access_key_id",
        "",
        "Access key for the bucket; empty to use the standard AWS credential chain "
        "(instance role, ~/.aws).",
        _optional,
    ),
    Setting(
        "IMAGE_S3_SECRET_ACCESS_KEY",
        "s3_secret_access_key",
        "",
        "Secret key matching IMAGE_S3_ACCESS_KEY_ID.",
        _optional,
    ),
    Setting(
        "IMAGE_PUBLIC_BASE_URL",
        "public_base_url",
        "/generated-images",
        "Prefix of every image_url: this service's own static route by default, or a CDN / nginx "
        "URL such as https://cdn.example.com/generated-images.",
        _public_base_url,
    ),
    Setting(
        "IMAGE_RETENTION_DAYS",
        "retention_days",
        "30",
        "Days an image lives before the cleanup deletes it (per-upload retention_days overrides).",
        _positive_int,
    ),
    Setting(
        "IMAGE_MAX_UPLOAD_BYTES",
        "max_upload_bytes",
        "10485760",
        "Largest accepted image in bytes (default 10 MiB); larger uploads get 413.",
        _positive_int,
    ),
    Setting(
        "IMAGE_SIDECAR_HOST",
        "host",
        "127.0.0.1",
        "Address to listen on. Anything but a loopback address requires IMAGE_SIDECAR_API_TOKEN.",
    ),
    Setting("IMAGE_SIDECAR_PORT", "port", "8080", "TCP port to listen on.", _port),
    Setting(
        "IMAGE_SIDECAR_API_TOKEN",
        "api_token",
        "",
        "Bearer token required on every write endpoint when set.",
        _optional,
    ),
    Setting(
        "IMAGE_SIDECAR_DEV_DATA_DIR",
        "dev_data_dir",
        "./var",
        "Where `image-sidecar dev` keeps its embedded PostgreSQL cluster.",
        Path,
    ),
    Setting(
        "IMAGE_CLEANUP_ENABLED",
        "cleanup_enabled",
        "true",
        "Run the scheduled cleanup inside the service (true/false). Manual runs work either way.",
        _boolean,
    ),
    Setting(
        "IMAGE_CLEANUP_CRON",
        "cleanup_cron",
        "0 2 * * *",
        "When the cleanup runs, in UTC: 'M H * * *', 'M H * * D', 'M * * * *', '*/N * * * *', "
        "@daily, @hourly or @weekly.",
        parse_cron,
    ),
    Setting(
        "IMAGE_CLEANUP_BATCH_SIZE",
        "cleanup_batch_size",
        "500",
        "Images deleted per database transaction during a cleanup or purge.",
        _positive_int,
    ),
    Setting(
        "IMAGE_ORPHAN_GRACE_SECONDS",
        "orphan_grace_seconds",
        "3600",
        "Files without a database row are swept once they are this old (spares uploads in flight).",
        _positive_int,
    ),
    Setting(
        "IMAGE_METRICS_REFRESH_SECONDS",
        "metrics_refresh_seconds",
        "15",
        "How often the storage and live-image gauges are read from the database.",
        _positive_float,
    ),
    Setting(
        "IMAGE_CACHE_CLAIM_SECONDS",
        "cache_claim_seconds",
        "120",
        "How long a cache miss's claim on a prompt lasts; if its holder never uploads, the next "
        "caller gets the claim after this.",
        _positive_int,
    ),
    Setting(
        "IMAGE_GENERATION_COST_USD",
        "generation_costs",
        "dall-e-3=0.040,default=0.020",
        "Cost of one AI call per ai_service, used for cost-saved figures when an upload carries "
        "no generation_cost_usd; `default` covers the other services.",
        _generation_costs,
    ),
)


@dataclass(frozen=True)
class CleanupSettings:
    batch_size: int = 500
    orphan_grace_seconds: int = 3600


@dataclass(frozen=True)
class Config:
    database_url: str | None
    database_pool_size: int
    database_timeout_seconds: float
    storage_base_dir: Path
    storage_type: str
    s3_bucket: str | None
    s3_endpoint_url: str | None
    s3_region: str
    s3_access_key_id: str | None
    s3_secret_access_key: str | None
    public_base_url: str
    retention_days: int
    max_upload_bytes: int
    host: str
    port: int
    api_token: str | None
    dev_data_dir: Path
    cleanup_enabled: bool
    cleanup_cron: CronSpec
    cleanup_batch_size: int
    orphan_grace_seconds: int
    metrics_refresh_seconds: float
    cache_claim_seconds: int
    generation_costs: GenerationCosts

    @property
    def cleanup_settings(self) -> CleanupSettings:
        return CleanupSettings(
            batch_size=self.cleanup_batch_size, orphan_grace_seconds=self.orphan_grace_seconds
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(environ: Mapping[str, str]) -> Config:
    """Build a Config from a mapping (the process environment, or a dict in tests)."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name, setting.default)
        try:
            values[setting.field] = setting.parse(raw)
        except ValueError as exc:
            reason = str(exc) if "must" in str(exc) else "is not valid"
            raise ConfigError(f"{setting.name}={raw!r} {reason}") from None
    config = Config(**values)
    if config.storage_type == "s3" and config.s3_bucket is None:
        raise ConfigError("IMAGE_STORAGE_TYPE=s3 requires IMAGE_S3_BUCKET")
    if (config.s3_access_key_id is None) != (config.s3_secret_access_key is None):
        raise ConfigError(
            "IMAGE_S3_ACCESS_KEY_ID and IMAGE_S3_SECRET_ACCESS_KEY must be set together"
        )
    if config.api_token is None and not is_loopback(config.host):
        raise ConfigError(
            f"IMAGE_SIDECAR_API_TOKEN must be set when IMAGE_SIDECAR_HOST={config.host!r} "
            "is not a loopback address"
        )
    return config


def load_environment(dotenv_path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """The process environment over the values of `.env` (the environment wins)."""
    from_file = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    return {**from_file, **os.environ}
