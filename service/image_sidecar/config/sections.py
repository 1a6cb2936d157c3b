"""The settings, one frozen dataclass per section.

Generated from service/image_sidecar/config/table.py by `python -m image_sidecar.config.generate`:
edit the table, not this file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from image_sidecar.config.table import default
from image_sidecar.lifecycle.cron import CronSchedule
from image_sidecar.prompt_cache.costs import GenerationCosts

__all__ = [
    "CacheSettings",
    "Config",
    "DatabaseSettings",
    "MetricsSettings",
    "ModerationSettings",
    "RetentionSettings",
    "S3Settings",
    "ServerSettings",
    "SharingSettings",
    "StorageSettings",
]


@dataclass(frozen=True)
class S3Settings:
    bucket: str | None = default("IMAGE_S3_BUCKET")
    endpoint_url: str | None = default("IMAGE_S3_ENDPOINT_URL")
    region: str = default("IMAGE_S3_REGION")
    access_key_id: str | None = default("IMAGE_S3_ACCESS_KEY_ID")
    secret_access_key: str | None = default("IMAGE_S3_SECRET_ACCESS_KEY")


@dataclass(frozen=True)
class ServerSettings:
    host: str = default("IMAGE_SIDECAR_HOST")
    port: int = default("IMAGE_SIDECAR_PORT")
    workers: int = default("IMAGE_SIDECAR_WORKERS")
    api_token: str | None = default("IMAGE_SIDECAR_API_TOKEN")
    body_timeout_seconds: float = default("IMAGE_SIDECAR_BODY_TIMEOUT_SECONDS")
    shutdown_seconds: float = default("IMAGE_SIDECAR_SHUTDOWN_SECONDS")
    dev_data_dir: Path = default("IMAGE_SIDECAR_DEV_DATA_DIR")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str | None = default("DATABASE_URL")
    listen_url: str | None = default("DATABASE_LISTEN_URL")
    pool_size: int = default("DATABASE_POOL_SIZE")
    timeout_seconds: float = default("DATABASE_TIMEOUT_SECONDS")


@dataclass(frozen=True)
class StorageSettings:
    type: Literal["filesystem", "s3"] = default("IMAGE_STORAGE_TYPE")
    base_dir: Path = default("IMAGE_STORAGE_BASE_DIR")
    public_base_url: str = default("IMAGE_PUBLIC_BASE_URL")
    max_upload_bytes: int = default("IMAGE_MAX_UPLOAD_BYTES")
    max_pixels: int = default("IMAGE_MAX_PIXELS")
    rendition_formats: tuple[str, ...] = default("IMAGE_RENDITION_FORMATS")
    renditions_at_upload: tuple[str, ...] = default("IMAGE_RENDITIONS_AT_UPLOAD")
    web_ready_max_bytes: int = default("IMAGE_WEB_READY_MAX_BYTES")
    processing_workers: int = default("IMAGE_PROCESSING_WORKERS")
    processing_max_wait_seconds: float = default("IMAGE_PROCESSING_MAX_WAIT_SECONDS")
    min_free_bytes: int = default("IMAGE_MIN_FREE_BYTES")
    s3: S3Settings = field(default_factory=S3Settings)


@dataclass(frozen=True)
class RetentionSettings:
    days: int = default("IMAGE_RETENTION_DAYS")
    cleanup_enabled: bool = default("IMAGE_CLEANUP_ENABLED")
    cleanup_cron: CronSchedule = default("IMAGE_CLEANUP_CRON")
    batch_size: int = default("IMAGE_CLEANUP_BATCH_SIZE")
    orphan_grace_seconds: int = default("IMAGE_ORPHAN_GRACE_SECONDS")
    scrub_cron: CronSchedule | None = default("IMAGE_SCRUB_CRON")
    scrub_cycle_days: int = default("IMAGE_SCRUB_CYCLE_DAYS")
    audit_cron: CronSchedule | None = default("IMAGE_AUDIT_CRON")
    audit_files_per_second: int = default("IMAGE_AUDIT_FILES_PER_SECOND")
    scrub_max_bytes_per_second: int = default("IMAGE_SCRUB_MAX_BYTES_PER_SECOND")


@dataclass(frozen=True)
class CacheSettings:
    claim_seconds: int = default("IMAGE_CACHE_CLAIM_SECONDS")
    generation_costs: GenerationCosts = default("IMAGE_GENERATION_COST_USD")


@dataclass(frozen=True)
class MetricsSettings:
    ai_services: frozenset[str] = default("IMAGE_METRIC_AI_SERVICES")
    art_styles: frozenset[str] = default("IMAGE_METRIC_ART_STYLES")
    refresh_seconds: float = default("IMAGE_METRICS_REFRESH_SECONDS")


@dataclass(frozen=True)
class ModerationSettings:
    purge_webhook_url: str | None = default("IMAGE_PURGE_WEBHOOK_URL")
    url: str | None = default("IMAGE_MODERATION_URL")
    timeout_seconds: float = default("IMAGE_MODERATION_TIMEOUT_SECONDS")
    failure: Literal["closed", "open"] = default("IMAGE_MODERATION_FAILURE")
    block_similarity: int = default("IMAGE_BLOCK_SIMILARITY")


@dataclass(frozen=True)
class SharingSettings:
    base_url: str | None = default("IMAGE_SHARE_BASE_URL")
    default_days: int = default("IMAGE_SHARE_DAYS")
    max_days: int = default("IMAGE_SHARE_MAX_DAYS")


@dataclass(frozen=True)
class Config:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    moderation: ModerationSettings = field(default_factory=ModerationSettings)
    sharing: SharingSettings = field(default_factory=SharingSettings)
