"""Fast creation of many stored images (rows and files) for cleanup tests and benchmarks; a
store in the shape of real games for the scale benchmark (`seed_like_games`): 30 pictures a game
(3 rounds of 10 players), 30% reuses, 70% with a cache entry, one made rendition each, expiry
spread over 30 days with 1% expired."""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg2
from psycopg2.extras import execute_values

from testkit.images import noise_png, png_bytes

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


_SEED = """
INSERT INTO games (game_id, game_code, created_at)
SELECT md5('g' || g)::uuid, 'S' || upper(to_hex(g)),
       now() - interval '30 days' * (1 - (g * 30)::float8 / %(n)s)
FROM generate_series(0, (%(n)s - 1) / 30) AS g;

INSERT INTO game_rounds (game_id, round_id, round_number)
SELECT md5('g' || g)::uuid, md5('r' || g || '-' || r)::uuid, r
FROM generate_series(0, (%(n)s - 1) / 30) AS g, generate_series(1, 3) AS r;

INSERT INTO generated_images (
    image_id, submission_id, game_id, game_code, round_id, round_number, player_id,
    completed_sentence, prompt, image_path, image_url, content_type, size_bytes, sha256,
    prompt_hash, reused_from, created_at, expires_at, width, height)
SELECT md5('i' || i)::uuid, md5('s' || i)::uuid, md5('g' || g)::uuid, 'S' || upper(to_hex(g)),
       md5('r' || g || '-' || r)::uuid, r, md5('p' || g || '-' || p)::uuid,
       'seeded sentence ' || i, 'seeded sentence ' || i,
       path, '/generated-images/' || path, 'image/png', %(size)s,
       encode(sha256(('c' || CASE WHEN reuse THEN i - 7 ELSE i END)::bytea), 'hex'),
       encode(sha256(('h' || i)::bytea), 'hex'),
       CASE WHEN reuse THEN md5('i' || (i - 7))::uuid END,
       now() - interval '30 days' * (1 - i::float8 / %(n)s),
       now() + interval '1 day' * (30 * i::float8 / %(n)s - 0.3),
       1024, 1024
FROM (
    SELECT i, i / 30 AS g, (i %% 30) / 10 + 1 AS r, i %% 10 AS p,
           i %% 10 IN (0, 1, 2) AND i >= 7 AS reuse,
           'game-S' || upper(to_hex(i / 30)) || '-' || md5('g' || (i / 30))::uuid
               || '/round-' || ((i %% 30) / 10 + 1)
               || '/player-' || md5('p' || (i / 30) || '-' || (i %% 10))::uuid || '.png' AS path
    FROM generate_series(0, %(n)s - 1) AS i
) AS seeded;

INSERT INTO image_renditions (
    image_id, name, format, image_path, content_type, width, height, size_bytes, sha256)
SELECT image_id, 'thumb', 'webp', left(image_path, -4) || '.thumb.webp', 'image/webp',
       256, 256, %(thumb)s, %(thumb_sha256)s
FROM generated_images;

INSERT INTO image_cache (prompt_hash, image_id, prompt)
SELECT prompt_hash, image_id, prompt FROM generated_images
WHERE reused_from IS NULL AND right(prompt, 1) NOT IN ('0', '1', '2');
ANALYZE;
"""


def _path(i: int) -> str:
    g, r, p = i // 30, (i % 30) // 10 + 1, i % 10
    game_id = uuid.UUID(hashlib.md5(f"g{g}".encode()).hexdigest())
    player = uuid.UUID(hashlib.md5(f"p{g}-{p}".encode()).hexdigest())
    return f"game-S{g:X}-{game_id}/round-{r}/player-{player}.png"


# ext4 allows 65,000 names of one inode: each source file lends this many.
_LINKS_PER_SOURCE = 50_000


def _link_files(storage: Path, count: int, original: bytes, thumb: bytes, work: Path) -> None:
    made: set[Path] = set()
    for i in range(count):
        source = i // _LINKS_PER_SOURCE
        if i % _LINKS_PER_SOURCE == 0:
            sources = (work / f"original-{source}.png", work / f"thumb-{source}.webp")
            sources[0].write_bytes(original)
            sources[1].write_bytes(thumb)
        path = storage / _path(i)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        os.link(sources[0], path)
        os.link(sources[1], path.with_name(path.name.removesuffix(".png") + ".thumb.webp"))


def _real_scrub_slice(url: str, storage: Path, images: int) -> None:
    """The first images the scrub checks get files of their own (as large as the linked ones)
    that their rows describe (the hard-linked picture's digest is not theirs), so that a slice
    reads and compares real bytes."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                SELECT g.image_path, r.image_path FROM generated_images g
                JOIN image_renditions r USING (image_id)
                WHERE g.expires_at > now() ORDER BY g.image_id LIMIT %s
                """,
                (images + images // 5,),
            )
            originals, renditions = [], []
            for original, rendition in cur.fetchall():
                for key, rows in ((original, originals), (rendition, renditions)):
                    data = random.randbytes((storage / key).stat().st_size)
                    (storage / key).unlink()
                    (storage / key).write_bytes(data)
                    rows.append((key, len(data), hashlib.sha256(data).hexdigest()))
            for table, rows in (("generated_images", originals), ("image_renditions", renditions)):
                execute_values(
                    cur,
                    f"UPDATE {table} t SET size_bytes = v.size, sha256 = v.sha256 "
                    "FROM (VALUES %s) AS v (key, size, sha256) WHERE t.image_path = v.key",
                    rows,
                )
    finally:
        conn.close()


def seed_like_games(url: str, storage: Path, count: int, work: Path, *, real_files: int) -> None:
    """`count` images in the shape of real games (rows by SQL, files as hard links of a few
    sources kept in `work`); the first `real_files` the scrub checks get bytes of their own."""
    original, thumb = noise_png(222, seed=1), png_bytes(seed=2, size=64)
    started = time.monotonic()
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                _SEED,
                {
                    "n": count,
                    "size": len(original),
                    "thumb": len(thumb),
                    "thumb_sha256": hashlib.sha256(thumb).hexdigest(),
                },
            )
    finally:
        conn.close()
    rows = time.monotonic() - started
    sources = work / f"sources-{count}"
    sources.mkdir()
    _link_files(storage, count, original, thumb, sources)
    _real_scrub_slice(url, storage, real_files)
    print(
        f"  seeded {count:,} images: rows in {rows:.0f} s, "
        f"{2 * count:,} files in {time.monotonic() - started - rows:.0f} s",
        file=sys.stderr,
    )
