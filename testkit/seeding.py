"""Fast creation of many stored images (rows and files) for cleanup tests and benchmarks."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg2
from psycopg2.extras import execute_values

from testkit.images import png_bytes

_INSERT = """
INSERT INTO generated_images (
    image_id, submission_id, game_id, game_code, round_id, round_number, player_id,
    completed_sentence, prompt, image_path, image_url, content_type, size_bytes, sha256,
    prompt_hash, expires_at)
VALUES %s
"""


def seed_images(
    database_url: str,
    storage_dir: Path,
    count: int,
    *,
    game_code: str = "OLD",
    expired: bool = True,
    files: bool = True,
    chunk: int = 5_000,
    picture: Callable[[int], bytes] | None = None,
) -> int:
    """Write `count` image files and their rows (expired by default; `files=False` for rows
    only); returns the bytes written. All share one small PNG's bytes, unless `picture(n)`
    gives each its own."""
    image = png_bytes(seed=11)
    digest = hashlib.sha256(image).hexdigest()
    written = 0
    game_id, round_id = str(uuid.uuid4()), str(uuid.uuid4())
    lifetime = "- interval '1 day'" if expired else "+ interval '30 days'"
    template = f"(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() {lifetime})"
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO games (game_id, game_code) VALUES (%s, %s)", (game_id, game_code)
            )
            for start in range(0, count, chunk):
                rows = []
                for n in range(start, min(start + chunk, count)):
                    round_number = n // 1000
                    player = str(uuid.UUID(int=n + 1))
                    key = f"game-{game_code}-{game_id}/round-{round_number}/player-{player}.png"
                    if picture is not None:
                        image = picture(n)
                        digest = hashlib.sha256(image).hexdigest()
                    written += len(image)
                    if files:
                        path = storage_dir / key
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(image)
                    rows.append(
                        (
                            str(uuid.uuid4()),
                            str(uuid.uuid4()),
                            game_id,
                            game_code,
                            round_id,
                            round_number,
                            player,
                            "seeded",
                            "seeded",
                            key,
                            f"/generated-images/{key}",
                            "image/png",
                            len(image),
                            digest,
                            "0" * 64,
                        )
                    )
                execute_values(cur, _INSERT, rows, template=template, page_size=1000)
    finally:
        conn.close()
    return written
