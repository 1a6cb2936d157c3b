"""Every setting of the sidecar, read once from the environment (and `.env`), validated.

- `table.py`: the one table of settings (name, place, kind, default, help): edit this, or its
  second half `policy.py` (retention, the cache, moderation, sharing, metrics);
- `kinds.py`: what a value may be, how it is parsed, what a refusal says it expected;
- `sections.py`: the frozen dataclasses, generated from the table (`generate.py`), as are
  docs/configuration.md and .env.example;
- `load.py`: `load_config(environ)` turns the environment into a Config, or a ConfigError
  naming the variable and what it expects.

May import: the domain types that settings hold (`lifecycle.cron`, `prompt_cache.costs`), and
nothing else of the package: everything else imports this.
"""

from image_sidecar.config.load import ConfigError, is_loopback, load_config, load_environment
from image_sidecar.config.sections import (
    CacheSettings,
    Config,
    DatabaseSettings,
    MetricsSettings,
    ModerationSettings,
    RetentionSettings,
    S3Settings,
    ServerSettings,
    SharingSettings,
    StorageSettings,
)
from image_sidecar.config.table import SETTINGS, Setting

__all__ = [
    "SETTINGS",
    "CacheSettings",
    "Config",
    "ConfigError",
    "DatabaseSettings",
    "MetricsSettings",
    "ModerationSettings",
    "RetentionSettings",
    "S3Settings",
    "ServerSettings",
    "Setting",
    "SharingSettings",
    "StorageSettings",
    "is_loopback",
    "load_config",
    "load_environment",
]
