"""The game server's Node client (clients/node) passes its own tests against a real sidecar."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import random
import subprocess
import sys
import time
import unicodedata
import uuid
from pathlib import Path

import pytest

from image_sidecar.prompt_cache.prompts import prompt_hash
from testkit.helpers import free_port, require_tool, wait_ready
from testkit.images import noise_png

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"


async def test_node_client_against_a_running_sidecar(sidecar_server, make_app):
    node = require_tool("node")
    server = await sidecar_server(make_app())
    process = await asyncio.create_subprocess_exec(
        node,
        "--test",
        *sorted(str(path.relative_to(CLIENT)) for path in (CLIENT / "test").glob("*.test.js")),
        cwd=CLIENT,
        env={
            "SIDECAR_URL": f"http://127.0.0.1:{server.port}",
            "IMAGE_SIDECAR_URL": f"http://127.0.0.1:{server.port}",
            "PATH": "/usr/bin:/bin",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode()
    assert b"# fail 0" in output
    assert b"# pass 22" in output


# Where implementations of the canonical form differ: NFC, whitespace, case folding.
_PALETTE = [
    *"abcXYZ019 .,:-_'\"\\/",
    *("\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u1680", "\u2000"),
    *("\u2028", "\u202f", "\u3000", "\ufeff", "\u200b", "\x00", "\x08", "\x7f"),
    *("\u00df", "\u1e9e", "\u0130", "\u0131", "\u03a3", "\u03c2", "\ufb01", "\u0149"),
    *("\u00e9", "e\u0301", "\u212b", "A\u030a", "\u1e9b\u0323", "\u0344", "\uac00"),
    *("\u1100\u1161", "\u0390", "\u1f80", "\u0587", "\u13a0", "\uab70", "\U00010400"),
    *("\U0001f600", "\U0001f44d\U0001f3fd", "\u4e2d\u6587", "\u0416", "\u0436", "\u0625"),
]


def _random_corpus(size: int) -> list[dict]:
    rnd = random.Random(20261125)

    def text(longest: int) -> str:
        return "".join(rnd.choice(_PALETTE) for _ in range(rnd.randint(0, longest)))

    corpus = []
    for _ in range(size):
        prompt, style = text(30), rnd.choice([None, text(6)])
        model, size_ = rnd.choice(
            [(None, None), (text(5), None), (None, "1024x1024"), (text(4), text(3))]
        )
        corpus.append(
            {
                "prompt": prompt,
                "art_style": style,
                "model": model,
                "size": size_,
                "prompt_hash": prompt_hash(prompt, style, model, size_),
            }
        )
    return corpus


async def test_the_javascript_prompt_hash_agrees_on_a_random_unicode_corpus(tmp_path):
    node = require_tool("node")
    corpus = tmp_path / "corpus.json"
    corpus.write_text(json.dumps(_random_corpus(3000)), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        node,
        "--test",
        "test/prompt-hash.test.js",
        cwd=CLIENT,
        env={"PROMPT_HASH_CORPUS": str(corpus), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode()[-5000:]
    assert b"# pass 3" in output


def test_the_node_clients_unicode_tables_are_what_the_tool_writes():
    tool = CLIENT / "tools" / "unicode_tables.py"
    spec = importlib.util.spec_from_file_location("unicode_tables", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if unicodedata.unidata_version not in (CLIENT / "unicode-tables.js").read_text()[:200]:
        pytest.skip("another Unicode version than the tables' (they are written with CI's Python)")
    assert (CLIENT / "unicode-tables.js").read_text(encoding="utf-8") == module.render()


def test_the_node_package_ships_only_the_library_its_readme_and_license(tmp_path):
    npm = require_tool("npm")
    packed = subprocess.run(
        [npm, "pack", "--dry-run", "--json", "--ignore-scripts"],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "npm_config_update_notifier": "false"},
    )
    assert packed.returncode == 0, packed.stderr
    (package,) = json.loads(packed.stdout)
    assert {entry["path"] for entry in package["files"]} == {
        "package.json", "README.md", "LICENSE", "index.js", "index.d.ts", "prompt-hash.js",
        "prompt-hash.d.ts", "unicode-tables.js", "src/services/ImageStorageService.js",
        "src/services/ImageStorageService.d.ts",
    }  # fmt: skip


def test_the_client_is_tested_on_the_node_it_requires():
    """package.json's engines ask for Node 22 (an LTS); CI puts Node 22 first on PATH."""
    node = require_tool("node")
    engines = json.loads((CLIENT / "package.json").read_text())["engines"]["node"]
    required = int(engines.removeprefix(">="))
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < required and not os.environ.get("CI"):
        pytest.skip(f"node {major} here; the client requires {engines} (CI installs Node 22)")
    assert major >= required, f"node {version.stdout.strip()} cannot run a client for {engines}"


def test_the_type_declarations_accept_a_typescript_game_server(node_client_modules):
    """tsc --noEmit (strict) on test/types/consumer.ts, which imports the package by its name."""
    tsc = node_client_modules / "node_modules" / ".bin" / "tsc"
    checked = subprocess.run(
        [str(tsc), "-p", "test/types/tsconfig.json"],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# Uploads a picture with the story's saveImage and prints its URL; the client retries through
# the sidecar's restart.
_UPLOAD_THROUGH_A_RESTART = """
import { readFileSync } from 'node:fs';
import { ImageStorageService } from './index.js';
const [picture, roundId, playerId, gameId] = process.argv.slice(1);
const service = new ImageStorageService({ retries: 12, timeoutMs: 20000 });
console.log('sending');
const url = await service.saveImage(readFileSync(picture), 'RESTART', roundId, playerId,
  { gameId, roundNumber: 1 });
console.log(JSON.stringify({ url }));
"""


def test_a_sidecar_restarted_during_an_upload_ends_with_exactly_one_record(
    sidecar_environ, database, storage_dir, tmp_path
):
    node = require_tool("node")
    picture = tmp_path / "large.png"
    picture.write_bytes(noise_png(1800))  # ~9.7 MB: decoding and renditions take a while
    port = free_port()
    environ = {**sidecar_environ, "IMAGE_SIDECAR_PORT": str(port)}
    base_url = f"http://127.0.0.1:{port}"
    round_id, player_id, game_id = (str(uuid.uuid4()) for _ in range(3))

    def start_sidecar() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "image_sidecar", "serve"],
            cwd=tmp_path,
            env=environ,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        wait_ready(f"{base_url}/healthz", process)
        return process

    first = start_sidecar()
    client = subprocess.Popen(
        [
            node,
            "--input-type=module",
            "-e",
            _UPLOAD_THROUGH_A_RESTART,
            "--",
            str(picture),
            round_id,
            player_id,
            game_id,
        ],
        cwd=CLIENT,
        env={"IMAGE_SIDECAR_URL": base_url, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    second = None
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "sending"
        time.sleep(0.3)  # the body is in or the picture is being decoded
        assert client.poll() is None, "the upload ended before the restart: make it slower"
        first.kill()
        first.wait(timeout=30)
        second = start_sidecar()
        output, errors = client.communicate(timeout=120)
    finally:
        for process in (client, first, second):
            if process is not None:
                if process.poll() is None:
                    process.terminate()
                process.wait(timeout=30)
    assert client.returncode == 0, errors
    url = json.loads(output.strip().splitlines()[-1])["url"]
    rows = database.rows("SELECT image_path FROM generated_images WHERE player_id = %s", player_id)
    assert len(rows) == 1
    assert url.endswith(rows[0]["image_path"])
    assert (storage_dir / rows[0]["image_path"]).stat().st_size == picture.stat().st_size
