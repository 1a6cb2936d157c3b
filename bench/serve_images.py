"""Benchmark: image GETs through the sidecar's static route against nginx on the same files.

    python -m bench.serve_images [--seconds 10] [--connections 32]

Stores one 150 KB image through the real upload API of `image-sidecar serve`, then loads it with
wrk (Debian package `wrk`) from the sidecar, from nginx running deploy/nginx/image-sidecar.conf,
and from a bare aiohttp FileResponse (the floor of any aiohttp static route), one after the other
on this machine, and prints requests/s and the ratios. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

from bench.cleanup_backlog import bench_database
from testkit.helpers import free_port, image_fields, wait_for
from testkit.images import noise_png
from testkit.nginx import nginx_main_config


def _upload(base: str, image: bytes) -> str:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in image_fields(game_code="BENCH").items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        base + "/api/images",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["image_url"]


def _wrk(url: str, seconds: int, connections: int) -> float:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None or "Non-2xx" in output:
        raise SystemExit(f"wrk failed:\n{output}")
    return float(match.group(1))


# The least an aiohttp route can do for a file: the baseline for the sidecar's own overhead.
_BARE_FILE_RESPONSE = """
import sys
from aiohttp import web
async def serve(request):
    return web.FileResponse(sys.argv[1] + "/" + request.match_info["key"])
app = web.Application()
app.router.add_get("/generated-images/{key:.+}", serve)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("nginx") is None:
        raise SystemExit("needs wrk and nginx (apt-get install wrk nginx)")
    work = Path(tempfile.mkdtemp(prefix="sidecar-serve-bench-"))
    storage = work / "images"
    storage.mkdir()
    with bench_database(work) as url:
        port = free_port()
        environ = {
            **os.environ,
            "DATABASE_URL": url,
            "IMAGE_STORAGE_BASE_DIR": str(storage),
            "IMAGE_SIDECAR_PORT": str(port),
            "IMAGE_CLEANUP_ENABLED": "false",
        }
        sidecar = subprocess.Popen(
            [sys.executable, "-m", "image_sidecar", "serve"],
            env=environ,
            stderr=subprocess.DEVNULL,
        )
        nginx_port = free_port()
        main_conf = nginx_main_config(work, storage, nginx_port)
        nginx = subprocess.Popen(
            ["nginx", "-c", str(main_conf), "-p", str(work)], stderr=subprocess.DEVNULL
        )
        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-c", _BARE_FILE_RESPONSE, str(storage), str(bare_port)]
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(base + "/healthz")
            wait_for(f"http://127.0.0.1:{nginx_port}/healthz")
            bare_base = f"http://127.0.0.1:{bare_port}"
            image = noise_png(222)  # a real PNG (uploads are decoded), about 150 KB
            path = _upload(base, image)
            sidecar_rps = _wrk(base + path, args.seconds, args.connections)
            nginx_rps = _wrk(f"http://127.0.0.1:{nginx_port}{path}", args.seconds, args.connections)
            wait_for(bare_base + path)
            bare_rps = _wrk(bare_base + path, args.seconds, args.connections)
        finally:
            for process in (sidecar, nginx, bare):
                process.terminate()
                process.wait()
    shutil.rmtree(work, ignore_errors=True)
    print(f"150 KB image, {args.connections} connections, {args.seconds} s each")
    print(f"nginx (deploy/nginx):      {nginx_rps:10,.0f} req/s")
    print(f"bare aiohttp FileResponse: {bare_rps:10,.0f} req/s")
    print(f"sidecar static route:      {sidecar_rps:10,.0f} req/s")
    print(f"ratio sidecar/nginx:       {sidecar_rps / nginx_rps:10.2f}")
    print(f"ratio sidecar/bare:        {sidecar_rps / bare_rps:10.2f}")


if __name__ == "__main__":
    main()
