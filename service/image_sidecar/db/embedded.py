"""A private PostgreSQL for `image-sidecar dev` and the tests: the `pgserver` wheel's server."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql


class EmbeddedServer(Protocol):
    def get_uri(self, database: str | None = None) -> str: ...

    def cleanup(self) -> None: ...


def start_embedded_postgres(data_dir: Path, *, delete_on_stop: bool = False) -> EmbeddedServer:
    """Start (or reattach to) the cluster in `data_dir`; `cleanup()` stops it."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # pgserver's platformdirs warns whenever XDG_RUNTIME_DIR is unset (containers, CI, root
        # shells); its fallback under /tmp is what we want. Silenced here only, not globally.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        try:
            import pgserver  # a development extra: production images talk to a real server
        except ImportError:
            raise SystemExit(
                "the embedded PostgreSQL needs the dev extra: pip install -e '.[dev]' "
                "(or set DATABASE_URL)"
            ) from None
        return pgserver.get_server(data_dir, cleanup_mode="delete" if delete_on_stop else "stop")


def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` on the server of `admin_url` unless it exists."""
    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def drop_database(admin_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()


def database_url(admin_url: str, name: str) -> str:
    """`admin_url` with its database replaced by `name` (keeps host, socket dir and options)."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + name))
