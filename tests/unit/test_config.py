"""Configuration: defaults, validation messages that name the variable, the token rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from image_sidecar.config import ConfigError, load_config


def test_defaults_need_nothing_set():
    config = load_config({})
    assert config.database_url is None
    assert config.storage_base_dir == Path("./public/generated-images")
    assert config.retention_days == 30
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert config.public_base_url == "/generated-images"
    assert config.api_token is None


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
    assert load_config({"IMAGE_SIDECAR_HOST": "0.0.0.0", "IMAGE_SIDECAR_API_TOKEN": "t"}).api_token


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_loopback_hosts_need_no_token(host):
    assert load_config({"IMAGE_SIDECAR_HOST": host}).host == host


def test_public_base_url_loses_its_trailing_slash():
    config = load_config({"IMAGE_PUBLIC_BASE_URL": "https://cdn.example.com/img/"})
    assert config.public_base_url == "https://cdn.example.com/img"
