"""The project's nginx server block, run by a real nginx in a private prefix (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from testkit.helpers import free_port, require_tool

NGINX_CONF = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "image-sidecar.conf"


def nginx_main_config(
    tmp_path: Path, storage_dir: Path, port: int, sidecar_port: int = 8080
) -> Path:
    """A main nginx.conf around deploy/nginx/image-sidecar.conf, on `port`, serving
    `storage_dir` and passing share pages to the sidecar on `sidecar_port`, with every path it
    writes under `tmp_path` (its access log: tmp_path/access.log)."""
    server = (
        NGINX_CONF.read_text()
        .replace("listen 8081;", f"listen 127.0.0.1:{port};")
        .replace("alias /data/images/", f"alias {storage_dir}/")
        .replace(
            "proxy_pass http://127.0.0.1:8080;", f"proxy_pass http://127.0.0.1:{sidecar_port};"
        )
        .replace("/var/log/nginx/access.log", f"{tmp_path}/access.log")
    )
    (tmp_path / "server.conf").write_text(server)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"""
        user root;
        daemon off;
        worker_processes 1;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            client_body_temp_path {tmp_path}/body;
            proxy_temp_path {tmp_path}/proxy;
            fastcgi_temp_path {tmp_path}/fastcgi;
            uwsgi_temp_path {tmp_path}/uwsgi;
            scgi_temp_path {tmp_path}/scgi;
            include {tmp_path}/server.conf;
        }}
        """
    )
    return main


@asynccontextmanager
async def running_nginx(
    tmp_path: Path, storage_dir: Path, sidecar_port: int = 8080
) -> AsyncIterator[str]:
    """A real nginx with the shipped config, answering /healthz: its base URL."""
    nginx = require_tool("nginx")
    port = free_port()
    main = nginx_main_config(tmp_path, storage_dir, port, sidecar_port=sidecar_port)
    process = await asyncio.create_subprocess_exec(
        nginx, "-c", str(main), "-p", str(tmp_path),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(base + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
        yield base
    finally:
        process.terminate()
        await process.wait()
