"""The README's door: `image-sidecar dev` starts an embedded PostgreSQL, serves, stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from testkit.helpers import free_port, run_sidecar, sidecar_process, users_environ, wait_ready

ROOT = Path(__file__).resolve().parents[2]


def _user_environ(port: int) -> dict[str, str]:
    """A developer's shell: no DATABASE_ or IMAGE_ variable but the port."""
    return users_environ(IMAGE_SIDECAR_PORT=str(port))


def _run_dev(tmp_path, port):
    environ = _user_environ(port)
    return subprocess.Popen(
        [sys.executable, "-m", "image_sidecar", "dev"],
        cwd=tmp_path,
        env=environ,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_dev_serves_with_embedded_postgres_and_keeps_data_across_restarts(tmp_path):
    port = free_port()
    for _ in range(2):  # the second start reuses ./var and does not migrate again
        process = _run_dev(tmp_path, port)
        try:
            assert wait_ready(f"http://127.0.0.1:{port}/readyz", process) == 200
        finally:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert "embedded_postgres_stopped" in stderr
    assert (tmp_path / "var" / "postgres" / "PG_VERSION").exists()
    assert '"applied": []' in stderr
    assert "pgserver" not in stderr  # its records stay at debug; `dev` logs one line


def test_commands_next_to_a_running_dev_use_its_database_and_a_busy_port_names_dev(tmp_path):
    port = free_port()
    process = _run_dev(tmp_path, port)
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/readyz", process) == 200
        for command in ("migrate", "cleanup"):
            result = run_sidecar(command, cwd=tmp_path, environ=_user_environ(port))
            assert result.returncode == 0, result.stderr
            assert "using_dev_database" in result.stderr
        assert json.loads(result.stdout)["outcome"] == "success"

        second = run_sidecar("dev", cwd=tmp_path, environ=_user_environ(port))
        assert second.returncode != 0
        assert "image-sidecar dev: cannot start" in second.stderr
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert process.returncode == 0


def test_serve_without_database_url_explains_what_to_do(tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    result = run_sidecar("serve", cwd=tmp_path, environ=environ)
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr


def test_bad_configuration_names_the_variable(tmp_path):
    result = run_sidecar(
        "migrate", cwd=tmp_path, environ={**os.environ, "IMAGE_RETENTION_DAYS": "soon"}
    )
    assert result.returncode != 0
    assert "IMAGE_RETENTION_DAYS" in result.stderr


def test_dev_in_a_checkout_with_a_compose_env_says_what_it_took_from_it(tmp_path):
    """docs/operations.md's `cp .env.example .env` with its secrets set, then the README's dev."""
    env = (ROOT / ".env.example").read_text()
    env = env.replace("\nIMAGE_SIDECAR_API_TOKEN=\n", "\nIMAGE_SIDECAR_API_TOKEN=compose-secret\n")
    (tmp_path / ".env").write_text(env)
    log = tmp_path / "sidecar.log"
    with sidecar_process("dev", users_environ(), tmp_path) as (_, base):
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as ready:
            assert json.loads(ready.read())["status"] == "ready"
        request = urllib.request.Request(f"{base}/api/admin/cleanup", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        refused.value.close()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (said,) = [line for line in lines if line["event"] == "settings_file"]
    assert said["variables"] == ["IMAGE_SIDECAR_API_TOKEN"]  # every other line is a comment
    assert any(line["event"] == "token_required" for line in lines)
