"""What deploy/container-check asks of a running container, over HTTP: AI-sized uploads and a
fetch of each byte for byte, a takedown and a look-alike of it refused. Prints one line per
step; exits non-zero at the first thing that does not hold.

Usage (from the repository root, with the dev extra installed):
    python3 deploy/container_exercise.py BASE_URL TOKEN [--uploads N] [--takedown]
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.images import ai_picture
from testkit.lookalikes import as_jpeg, as_png, photo_like


def _request(
    base: str,
    token: str,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _upload(base: str, token: str, data: bytes, filename: str) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    fields = {
        "game_code": "CHECK",
        "game_id": str(uuid.uuid4()),
        "round_id": str(uuid.uuid4()),
        "round_number": "1",
        "player_id": str(uuid.uuid4()),
        "submission_id": str(uuid.uuid4()),
        "completed_sentence": "A container that works",
    }
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    content_type = f"multipart/form-data; boundary={boundary}"
    status, body = _request(base, token, "POST", "/api/images", b"".join(parts), content_type)
    return status, json.loads(body)


def _fail(message: str) -> None:
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def uploads(base: str, token: str, count: int) -> None:
    for seed in range(count):
        data = ai_picture(seed)
        status, record = _upload(base, token, data, "picture.png")
        if status != 201:
            _fail(f"upload {seed}: {status} {record}")
        status, fetched = _request(base, token, "GET", record["image_url"])
        if status != 200 or fetched != data:
            _fail(f"the fetch of upload {seed} ({status}) is not the uploaded bytes")
    print(f"{count} AI-sized uploads ({len(data) // 1000} KB each), each fetched byte for byte")


def takedown(base: str, token: str) -> None:
    picture = photo_like(7, 512)
    status, record = _upload(base, token, as_png(picture), "taken-down.png")
    if status != 201:
        _fail(f"upload before the takedown: {status} {record}")
    status, body = _request(base, token, "DELETE", f"/api/images/by-sha256/{record['sha256']}")
    if status != 200:
        _fail(f"takedown: {status} {body!r}")
    status, refused = _upload(base, token, as_jpeg(picture, 80), "look-alike.jpg")
    if status != 422 or refused.get("error", {}).get("code") != "blocked_content":
        _fail(f"a look-alike of the picture taken down was not refused: {status} {refused}")
    print("a look-alike of a picture taken down (re-encoded as JPEG): 422 blocked_content")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("token")
    parser.add_argument("--uploads", type=int, default=8)
    parser.add_argument("--takedown", action="store_true")
    args = parser.parse_args()
    uploads(args.base, args.token, args.uploads)
    if args.takedown:
        takedown(args.base, args.token)


if __name__ == "__main__":
    main()
