"""Configuration: defaults, validation messages that name the variable, the token rule."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from image_sidecar.config import ConfigError, load_config


def test_defaults_need_nothing_set():
    config = load_config({})
    assert config.database.url is None
    assert config.storage.base_dir == Path("./public/generated-images")
    assert config.retention.days == 30
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.storage.public_base_url == "/generated-images"
    assert config.server.api_token is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMAGE_RETENTION_DAYS", "0"),
        ("IMAGE_RETENTION_DAYS", "thirty"),
        ("IMAGE_MAX_UPLOAD_BYTES", "-5"),
        ("IMAGE_SIDECAR_PORT", "70000"),
        ("DATABASE_POOL_SIZE", "0"),
        ("IMAGE_PUBLIC_BASE_URL", "cdn.example.com"),
    ],
)
def test_bad_value_is_refused_naming_the_variable(variable, value):
    with pytest.raises(ConfigError, match=variable):
        load_config({variable: value})


def test_non_loopback_host_requires_a_token():
    with pytest.raises(ConfigError, match="IMAGE_SIDECAR_API_TOKEN"):
        load_config({"IMAGE_SIDECAR_HOST": "0.0.0.0"})
    assert load_config(
        {"IMAGE_SIDECAR_HOST": "0.0.0.0", "IMAGE_SIDECAR_API_TOKEN": "t"}
    ).server.api_token


def test_commands_that_open_no_port_need_no_token_off_loopback():
    """A migrate job or a cleanup CronJob runs the container's image (IMAGE_SIDECAR_HOST
    0.0.0.0) with DATABASE_URL only."""
    config = load_config({"IMAGE_SIDECAR_HOST": "0.0.0.0"}, listening=False)
    assert config.server.api_token is None


def test_share_lifetime_default_cannot_exceed_the_maximum():
    with pytest.raises(ConfigError, match="IMAGE_SHARE_DAYS"):
        load_config({"IMAGE_SHARE_DAYS": "400", "IMAGE_SHARE_MAX_DAYS": "365"})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_loopback_hosts_need_no_token(host):
    assert load_config({"IMAGE_SIDECAR_HOST": host}).server.host == host


def test_public_base_url_loses_its_trailing_slash():
    config = load_config({"IMAGE_PUBLIC_BASE_URL": "https://cdn.example.com/img/"})
    assert config.storage.public_base_url == "https://cdn.example.com/img"


def test_a_bad_value_says_what_the_setting_expects():
    with pytest.raises(ConfigError) as refused:
        load_config({"IMAGE_RETENTION_DAYS": "abc"})
    assert refused.value.name == "IMAGE_RETENTION_DAYS"
    assert "a positive whole number of days" in str(refused.value)


def test_settings_come_in_sections():
    config = load_config({"IMAGE_STORAGE_TYPE": "S3", "IMAGE_S3_BUCKET": "pictures"})
    assert config.storage.type == "s3"
    assert config.storage.s3.bucket == "pictures"
    assert config.retention.cleanup_cron.expression == "0 2 * * *"
    assert config.cache.claim_seconds == 120
    assert config.database.pool_size == 10
    assert config.metrics.refresh_seconds == 15


@pytest.mark.parametrize(
    ("expression", "fires", "quiet"),
    [
        ("0 2 * * *", "2026-11-25T02:00", "2026-11-25T03:00"),
        ("*/15 * * * *", "2026-11-25T10:45", "2026-11-25T10:46"),
        ("30 14 * * 1-5", "2026-11-25T14:30", "2026-11-28T14:30"),  # a Wednesday, a Saturday
        ("0 0 1 * *", "2026-12-01T00:00", "2026-12-02T00:00"),
        ("0 */6 * * *", "2026-11-25T18:00", "2026-11-25T19:00"),
        ("5 4 * * sun", "2026-11-29T04:05", "2026-11-30T04:05"),
        ("0 2 */2 * *", "2026-11-25T02:00", "2026-11-26T02:00"),
        ("@hourly", "2026-11-25T07:00", "2026-11-25T07:30"),
        ("@weekly", "2026-11-29T00:00", "2026-11-25T00:00"),
    ],
)
def test_every_five_field_cron_expression_is_honoured_in_utc(expression, fires, quiet):
    cron = load_config({"IMAGE_CLEANUP_CRON": expression}).retention.cleanup_cron
    utc = "+00:00"
    assert cron.matches(datetime.fromisoformat(fires + utc))
    assert not cron.matches(datetime.fromisoformat(quiet + utc))


@pytest.mark.parametrize(
    "expression",
    ["", "0 2 * *", "0 25 * * *", "61 2 * * *", "0 2 31 2 *", "0 2 * * funday", "0 0 2 * * *"],
)
def test_an_invalid_cron_is_refused_naming_the_variable(expression):
    with pytest.raises(ConfigError, match="IMAGE_CLEANUP_CRON"):
        load_config({"IMAGE_CLEANUP_CRON": expression})


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_cleanup_enabled_must_be_a_boolean(value):
    with pytest.raises(ConfigError, match="IMAGE_CLEANUP_ENABLED"):
        load_config({"IMAGE_CLEANUP_ENABLED": value})
