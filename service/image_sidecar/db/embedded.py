"""A private PostgreSQL for `image-sidecar dev` and the tests: the `pgserver` wheel's server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import warnings
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql


class EmbeddedServer(Protocol):
    def get_uri(self, database: str | None = None) -> str: ...

    def cleanup(self) -> None: ...


def start_embedded_postgres(
    data_dir: Path, *, delete_on_stop: bool = False, tcp: bool = False
) -> EmbeddedServer:
    """Start (or reattach to) the cluster in `data_dir`; `cleanup()` stops it. The `pgserver`
    wheel's server where it is installed (it has no build for every Python), else the
    machine's own PostgreSQL binaries. `tcp=True` asks for a server on 127.0.0.1 (for a
    container on the host network), which only the local binaries give."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if not tcp:
        with warnings.catch_warnings():
            # pgserver's platformdirs warns whenever XDG_RUNTIME_DIR is unset (containers, CI,
            # root shells); its fallback under /tmp is what we want. Silenced here only.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            try:
                import pgserver  # a development extra: production talks to a real server
            except ImportError:
                pass
            else:
                mode = "delete" if delete_on_stop else "stop"
                return pgserver.get_server(data_dir, cleanup_mode=mode)
    return LocalPostgres.start(data_dir, delete_on_stop=delete_on_stop)


class LocalPostgres:
    """A private cluster run by the machine's PostgreSQL binaries (Debian's postgresql-NN),
    listening on 127.0.0.1 and a socket in its data directory. initdb refuses root, so as root
    the cluster belongs to the `postgres` user."""

    def __init__(self, data_dir: Path, port: int, *, delete_on_stop: bool, owned: bool) -> None:
        self.data_dir, self.port = data_dir, port
        self.delete_on_stop = delete_on_stop
        self.owned = owned  # started here, so stopped here (not when joined while running)

    @classmethod
    def start(cls, data_dir: Path, *, delete_on_stop: bool = False) -> LocalPostgres:
        bin_dir = _local_bin_dir()
        data_dir = data_dir.resolve()
        if not (data_dir / "PG_VERSION").exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            _own(data_dir)
            _run_as_owner(
                [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres",
                 "--auth=trust", "--encoding=utf8"],
            )  # fmt: skip
        running = data_dir / "postmaster.pid"
        if running.exists() and _is_running(bin_dir, data_dir):
            port = int(running.read_text().splitlines()[3])  # the pid file's fourth line
            return cls(data_dir, port, delete_on_stop=False, owned=False)
        port = _free_port()
        _run_as_owner(
            [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-w", "-l", str(data_dir / "log"),
             "-o", f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1", "start"],
        )  # fmt: skip
        return cls(data_dir, port, delete_on_stop=delete_on_stop, owned=True)

    def get_uri(self, database: str | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database or 'postgres'}"

    def cleanup(self) -> None:
        if not self.owned:
            return
        stop_local_postgres(self.data_dir)
        if self.delete_on_stop:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def stop_local_postgres(data_dir: Path) -> None:
    _run_as_owner(
        [str(_local_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"]
    )


def _local_bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise SystemExit(
            "no embedded PostgreSQL: install the dev extra (pgserver) or PostgreSQL's server "
            "binaries (Debian: postgresql), or set DATABASE_URL"
        )
    return found[-1].parent


def _is_running(bin_dir: Path, data_dir: Path) -> bool:
    command = [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "status"]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, cwd="/").returncode == 0


def _own(data_dir: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
        for parent in data_dir.parents:  # the postgres user must reach its data directory
            if parent.stat().st_mode & 0o001 == 0 and parent != Path("/"):
                parent.chmod(parent.stat().st_mode | 0o001)


def _run_as_owner(command: list[str]) -> None:
    program = Path(command[0]).name
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        raise SystemExit(f"PostgreSQL's {program} failed: {(done.stderr or done.stdout).strip()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
