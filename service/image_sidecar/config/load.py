"""Reading the settings: from the environment (and `.env`) into a validated, frozen Config."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any

from dotenv import dotenv_values

from image_sidecar.config import sections
from image_sidecar.config.kinds import Refused
from image_sidecar.config.table import NESTED, SECTIONS, SETTINGS, class_name


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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_rules(config: sections.Config, *, listening: bool) -> None:
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


def load_config(environ: Mapping[str, str], *, listening: bool = True) -> sections.Config:
    """Build a Config from a mapping (the process environment, or a dict in tests).
    `listening=False` for the commands that open no port (migrate, cleanup, renditions): they
    need no API token wherever IMAGE_SIDECAR_HOST points."""
    values: dict[str, dict[str, Any]] = {name: {} for name in (*SECTIONS, *NESTED)}
    for setting in SETTINGS:
        raw = environ.get(setting.name, setting.default)
        try:
            values[setting.section][setting.field] = setting.kind.parse(raw)
        except Refused as exc:
            raise ConfigError(setting.name, raw, setting.expects, str(exc)) from None
        except ValueError:
            raise ConfigError(setting.name, raw, setting.expects) from None
    for nested, parent in NESTED.items():
        values[parent][nested] = getattr(sections, class_name(nested))(**values.pop(nested))
    config = sections.Config(
        **{name: getattr(sections, class_name(name))(**fields) for name, fields in values.items()}
    )
    _check_rules(config, listening=listening)
    return config


def load_environment(dotenv_path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """The process environment over the values of `.env` (the environment wins)."""
    return {**settings_from_dotenv(dotenv_path), **os.environ}


def settings_from_dotenv(dotenv_path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """What `.env` sets (and the process environment does not override): the commands say at
    start which of these they took, since the same file configures docker compose."""
    from_file = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    return {k: v for k, v in from_file.items() if k not in os.environ}
