"""The game server's Node client (clients/node) passes its own tests against a real sidecar."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.helpers import require_tool

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"


async def test_node_client_against_a_running_sidecar(aiohttp_server, make_app):
    node = require_tool("node")
    server = await aiohttp_server(make_app(), host="127.0.0.1")
    process = await asyncio.create_subprocess_exec(
        node,
        "--test",
        "test/",
        cwd=CLIENT,
        env={"SIDECAR_URL": f"http://127.0.0.1:{server.port}", "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode()
    assert b"# fail 0" in output
    assert b"# pass 5" in output
