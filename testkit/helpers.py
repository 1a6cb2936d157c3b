"""What tests and benchmarks share: valid upload fields, an uploader, real tools and processes."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testkit.database import Database
from testkit.images import png_bytes


def kill_once_images_go(process: subprocess.Popen[Any], database: Database, held: int) -> int:
    """SIGKILL `process` as soon as it has deleted some of the `held` image rows; the rows
    left (the caller checks that the kill landed part-way)."""
    deadline = time.monotonic() + 60
    while database.count("generated_images") == held and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return database.count("generated_images")


def storage_files(storage_dir: Path) -> list[str]:
    """Every file under the storage directory, temp files included, as sorted relative paths."""
    return sorted(str(p.relative_to(storage_dir)) for p in storage_dir.rglob("*") if p.is_file())


def game_id_of(game_code: str) -> str:
    """The default game_id of a code in tests: one game per code unless a test says otherwise."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"game/{game_code.upper()}"))


def round_id_of(game_id: str, round_number: object) -> str:
    """The default round_id of a game's round."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"round/{game_id}/{round_number}"))


def image_fields(**overrides: Any) -> dict[str, str]:
    """Valid upload metadata with fresh ids; override any field, or drop one with None. The
    game and round ids follow the code and round number unless given."""
    game_code = str(overrides.get("game_code") or "ABCD")
    game_id = str(overrides.get("game_id") or game_id_of(game_code))
    round_number = "1" if overrides.get("round_number") is None else overrides["round_number"]
    fields = {
        "game_code": game_code,
        "game_id": game_id,
        "round_id": round_id_of(game_id, round_number),
        "round_number": str(round_number),
        "player_id": str(uuid.uuid4()),
        "submission_id": str(uuid.uuid4()),
        "completed_sentence": "A cat riding a skateboard",
        "art_style": "watercolor",
        "ai_service": "dall-e-3",
    }
    fields.update({k: str(v) for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            fields.pop(key, None)
    return fields


UploadFn = Callable[..., Awaitable[aiohttp.ClientResponse]]


def uploader(client: Any) -> UploadFn:
    """POST /api/images through `client` with valid defaults; keyword arguments override fields."""

    async def post(
        image: bytes | None = None,
        headers: dict[str, str] | None = None,
        **overrides: Any,
    ) -> aiohttp.ClientResponse:
        form = aiohttp.FormData()
        for name, value in image_fields(**overrides).items():
            form.add_field(name, value)
        form.add_field(
            "image",
            io.BytesIO(png_bytes() if image is None else image),  # large bodies stream
            filename="image.png",
            content_type="application/octet-stream",
        )
        return await client.post("/api/images", data=form, headers=headers)

    return post


def metric_sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample, parsed with prometheus_client's own parser."""
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    raise AssertionError(f"{name}{labels} not in the exposition")


def require_tool(name: str) -> str:
    """The path of a real program a test drives. CI installs them all (.ci/run), so there a
    missing tool fails the test; on a developer's machine it is skipped, saying what to install.
    """
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: see .ci/run for the package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_sidecar(
    *args: str, cwd: Path, environ: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`image-sidecar ARGS` as a user runs it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "image_sidecar", *args],
        cwd=cwd,
        env=os.environ if environ is None else environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def users_environ(**settings: str) -> dict[str, str]:
    """This process's environment without any DATABASE_ or IMAGE_ variable (a developer's
    shell), plus `settings`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "IMAGE_"))}
    return {**environ, **settings}


def wait_ready(
    url: str, process: subprocess.Popen[str], seconds: float = 60, log: Path | None = None
) -> int:
    """Poll `url` until it answers (any status), failing if `process` exits first (with its
    stderr, or the `log` file it writes to)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = log.read_text() if log else process.stderr.read() if process.stderr else ""
            pytest.fail(f"image-sidecar exited early:\n{stderr}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"image-sidecar did not answer {url}")


@contextmanager
def sidecar_process(
    command: str, environ: dict[str, str], cwd: Path
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`image-sidecar COMMAND` in its own process on a free port: (process, base URL), once it
    answers /healthz. Its log goes to cwd/sidecar.log (a pipe nobody reads would fill and stall
    it). Stopped with SIGTERM on exit unless the test stopped it; it leads a process group of its
    own, so that what a test's SIGKILL leaves (its picture processes) goes too."""
    port = free_port()
    log = cwd / "sidecar.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "image_sidecar", command],
            cwd=cwd,
            env={**environ, "IMAGE_SIDECAR_PORT": str(port)},
            stderr=log_file,
            text=True,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base_url}/healthz", process, log=log)
        yield process, base_url
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def stored_bytes(record: dict[str, Any]) -> int:
    """The bytes of an image's files: the original and its renditions."""
    return record["size_bytes"] + sum(r["size_bytes"] for r in record["renditions"])


def path_of(storage_dir: Path, record: dict[str, Any]) -> Path:
    return storage_dir / record["image_url"].removeprefix("/generated-images/")


def wait_for(url: str, seconds: float = 30) -> None:
    """Poll `url` until anything answers it (a server that has started); SystemExit after
    `seconds`. For processes the caller does not watch (benchmarks); tests use wait_ready."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")
