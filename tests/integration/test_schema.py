"""The database schema: the story's columns (Story 5.3) beside ours, a migration forward from
the previous schema that loses no row, and an index under every listing at 100,000 rows."""

from __future__ import annotations

import json
import uuid

import pytest
from psycopg2.extras import RealDictCursor

from image_sidecar import db
from image_sidecar.db import images as image_rows
from image_sidecar.db.embedded import database_url, drop_database, ensure_database
from image_sidecar.db.migrations_runner import apply_migrations, available_migrations
from testkit.database import Database
from testkit.seeding import seed_images

# The story's tables, column for column, with the defaults it gives.
STORY_COLUMNS = {
    "generated_images": {
        "image_id": "gen_random_uuid()",
        "game_id": None,
        "round_id": None,
        "player_id": None,
        "submission_id": None,
        "image_url": None,
        "image_path": None,
        "completed_sentence": None,
        "art_style": None,
        "ai_service": None,
        "generated_at": None,
        "expires_at": None,
        "created_at": "now()",
    },
    "image_cache": {
        "cache_id": None,
        "prompt_hash": None,
        "prompt": None,
        "image_id": None,
        "hit_count": "1",
        "last_hit": "now()",
        "created_at": "now()",
    },
}
STORY_INDEXED = {"generated_images": ["game_id", "round_id", "expires_at"], "image_cache": []}


def test_the_story_schema_exists_column_for_column(database):
    for table, columns in STORY_COLUMNS.items():
        found = {
            row["column_name"]: row["column_default"]
            for row in database.rows(
                "SELECT column_name, column_default FROM information_schema.columns "
                "WHERE table_name = %s",
                table,
            )
        }
        for column, default in columns.items():
            assert column in found, f"{table}.{column} is missing"
            if default is not None:
                assert (found[column] or "").startswith(default), (table, column, found[column])
        leading = {
            row["column"]
            for row in database.rows(
                """
                SELECT a.attname AS column FROM pg_index i
                JOIN pg_class t ON t.oid = i.indrelid
                JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
                WHERE t.relname = %s
                """,
                table,
            )
        }
        for column in STORY_INDEXED[table]:
            assert column in leading, f"no index on {table}.{column}"


@pytest.fixture
def previous_schema_url(postgres_admin_url):
    """A database migrated only as far as the release before game identity (0001-0003)."""
    name = f"sidecar_prev_{uuid.uuid4().hex[:10]}"
    ensure_database(postgres_admin_url, name)
    url = database_url(postgres_admin_url, name)
    old = Database(url)
    old.rows(
        "CREATE TABLE schema_migrations (name text PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for migration in available_migrations():
        if migration.name >= "0004":
            break
        old.rows(migration.sql.replace("%", "%%"))
        old.rows("INSERT INTO schema_migrations (name) VALUES (%s)", migration.name)
    yield url
    drop_database(postgres_admin_url, name)


def _old_row(game_id, code, player, key, created, round_id):
    return (
        str(uuid.uuid4()), str(uuid.uuid4()), game_id, code, round_id, 1, player, "old sentence",
        "old prompt", key, "image/png", 3, "a" * 64, "b" * 64, created,
    )  # fmt: skip


async def test_migrating_forward_keeps_every_row_and_url(
    previous_schema_url, make_client, tmp_path
):
    old = Database(previous_schema_url)
    first, second, player = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    rows = [
        # two games under one code (one of them stored in lower case), same round and player
        _old_row(first, "abcd", player, "game-abcd/round-1/player-a.png", "2026-01-01", first),
        _old_row(second, "ABCD", player, "game-ABCD/round-1/player-b.png", "2026-01-02", second),
        # the bug this release fixes: a second picture for one player's round
        _old_row(second, "ABCD", player, "game-ABCD/round-1/player-c.jpg", "2026-01-03", second),
    ]
    for row in rows:
        old.rows(
            """
            INSERT INTO generated_images (image_id, submission_id, game_id, game_code, round_id,
                round_number, player_id, completed_sentence, prompt, storage_key, content_type,
                size_bytes, sha256, prompt_hash, created_at, expires_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() + '1 day')
            """,
            *row,
        )
        path = tmp_path / "images" / row[9]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(row[9].encode())
    old.rows(
        "INSERT INTO image_cache (prompt_hash, image_id) VALUES (%s, %s)", "b" * 64, rows[1][0]
    )

    pool = await db.create_pool(previous_schema_url, size=1)
    try:
        assert await apply_migrations(pool) == [
            m.name for m in available_migrations() if m.name >= "0004"
        ]
    finally:
        await db.close_pool(pool)

    assert old.count("generated_images") == 3
    assert old.rows("SELECT hit_count, prompt FROM image_cache") == [
        {"hit_count": 1, "prompt": "old prompt"}
    ]
    # the history starts from what the rows tell, so /api/stats keeps the past
    history = old.rows("SELECT day::text, ai_service, generated FROM daily_usage ORDER BY day")
    assert history == [
        {"day": f"2026-01-0{n}", "ai_service": "", "generated": 1} for n in (1, 2, 3)
    ]
    client = await make_client(
        DATABASE_URL=previous_schema_url, IMAGE_STORAGE_BASE_DIR=str(tmp_path / "images")
    )
    for row in rows:  # every URL issued before the migration still serves its bytes
        served = await client.get(f"/generated-images/{row[9]}")
        assert await served.read() == row[9].encode()
    newest = (await (await client.get("/api/games/ABCD/rounds/1/images")).json())["images"]
    assert [r["image_path"] for r in newest] == ["game-ABCD/round-1/player-c.jpg"]
    oldest = await client.get(f"/api/games/abcd/rounds/1/images?game_id={first}")
    assert [r["image_path"] for r in (await oldest.json())["images"]] == [
        "game-abcd/round-1/player-a.png"
    ]


class ExplainingCursor:
    """Stands in for a cursor: plans each statement instead of running it."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.plans: list[dict] = []

    async def execute(self, sql: str, params) -> None:
        with self.conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            self.plans.append(cur.fetchone()["QUERY PLAN"][0]["Plan"])

    async def fetchall(self) -> list:
        return []

    async def fetchone(self) -> None:
        return None


async def test_every_listing_uses_an_index_at_100000_rows(database, storage_dir):
    for n in range(20):
        seed_images(
            database.url, storage_dir, 5_000, game_code=f"G{n % 10}", expired=False, files=False
        )
    database.rows("ANALYZE")
    game = database.rows("SELECT game_id, round_id FROM generated_images LIMIT 1")[0]
    import psycopg2

    conn = psycopg2.connect(database.url)
    try:
        cursor = ExplainingCursor(conn)
        await image_rows.list_round(cursor, "G3", 1, None)
        await image_rows.list_round(cursor, "G3", 2, game["game_id"])
        await image_rows.list_round(cursor, "G3", uuid.UUID(game["round_id"]), None)
        await image_rows.list_game(cursor, "G3", None)
        await image_rows.list_game(cursor, "G3", game["game_id"])
        await image_rows.get_player_image(cursor, "G3", 1, uuid.UUID(int=5), None)
    finally:
        conn.close()
    for plan in cursor.plans:
        scans = {(node.get("Relation Name"), node["Node Type"]) for node in _nodes(plan)}
        images = {kind for relation, kind in scans if relation == "generated_images"}
        assert images, plan
        assert "Seq Scan" not in images, json.dumps(plan)  # (games, tiny here, may be scanned)


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
