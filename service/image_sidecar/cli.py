"""`image-sidecar serve | migrate | dev | cleanup | renditions --backfill | scrub | audit |
recount | migrate-store | export | import`: the command line (the batch commands are
`commands.py`)."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import structlog

from image_sidecar import db
from image_sidecar.app import create_app
from image_sidecar.archive.export import Selection
from image_sidecar.commands import (
    DEV_URL_FILE,
    audit,
    cleanup,
    export_command,
    import_command,
    migrate_store_command,
    recount,
    renditions,
    require_database,
    run,
    scrub,
)
from image_sidecar.config import Config, ConfigError, load_config, load_environment
from image_sidecar.config.limits import limits
from image_sidecar.config.load import settings_from_dotenv
from image_sidecar.config.table import SETTINGS
from image_sidecar.db.embedded import ensure_database, start_embedded_postgres
from image_sidecar.log import configure_logging
from image_sidecar.server import (
    return_large_buffers_to_the_system,
    serve_until_stopped,
    serve_workers,
)

log = structlog.get_logger("image_sidecar.cli")
T = TypeVar("T")

DEV_DATABASE = "image_sidecar"


def migrate(config: Config) -> None:
    url = require_database(config, "migrate", dev_fallback=True)
    applied = run(db.migrate_database(url), config)
    log.info("migrations_applied", applied=applied, count=len(applied))


def serve(config: Config, command: str = "serve") -> None:
    require_database(config, command)
    return_large_buffers_to_the_system()
    granted = limits()  # what `auto` counts from: in the log, so that an operator sees why
    log.info(
        "starting",
        storage=str(config.storage.base_dir),
        workers=config.server.workers,
        picture_processes=config.storage.processing_workers,
        cpus_granted=granted.cpus,
        memory_limit_bytes=granted.memory_bytes,
    )
    try:
        if config.server.workers > 1:
            assert config.database.url is not None  # _require_database
            run(
                db.check_schema(config.database.url, config.database.timeout_seconds),
                config,
                traced=False,
            )
            serve_workers(config, create_app)
        else:
            asyncio.run(serve_until_stopped(create_app(config), config.server))
    except db.SchemaBehind as exc:
        raise SystemExit(f"image-sidecar {command}: {exc.message}") from None
    except (db.ConnectionFailed, OSError) as exc:
        raise SystemExit(f"image-sidecar {command}: cannot start: {exc}") from None


def dev(config: Config) -> None:
    """Serve with an embedded PostgreSQL under IMAGE_SIDECAR_DEV_DATA_DIR unless DATABASE_URL."""
    if config.database.url is not None:
        migrate(config)
        serve(config, "dev")
        return
    data_dir = config.server.dev_data_dir
    server = start_embedded_postgres(data_dir / "postgres")
    url = server.get_uri(DEV_DATABASE)
    recorded = data_dir / DEV_URL_FILE
    try:
        ensure_database(server.get_uri(), DEV_DATABASE)
        recorded.write_text(url + "\n")  # the same on every start: the socket is in data_dir
        log.info("embedded_postgres_started", data_dir=str(data_dir / "postgres"))
        config = replace(config, database=replace(config.database, url=url))
        migrate(config)
        serve(config, "dev")
    finally:
        server.cleanup()
        log.info("embedded_postgres_stopped")


def _instant(raw: str) -> datetime:
    """An ISO 8601 instant with its offset (Z for UTC)."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 instant") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{raw!r} needs its UTC offset (e.g. Z or +02:00)")
    return moment


COMMANDS: dict[str, Callable[[Config], None]] = {"serve": serve, "migrate": migrate, "dev": dev}


def _say_what_dotenv_set(command: str) -> None:
    """A checkout's `.env` configures docker compose and every command run in it alike: the
    listening commands say which variables it set (names, never values), and `dev` says when
    they make writes need a token the README's first curl does not send."""
    if command not in ("serve", "dev"):
        return
    known = {setting.name for setting in SETTINGS}
    taken = sorted(name for name in settings_from_dotenv() if name in known)
    if not taken:
        return
    log.info("settings_file", path=str(Path(".env").resolve()), variables=taken)
    if command == "dev" and "IMAGE_SIDECAR_API_TOKEN" in taken:
        log.warning(
            "token_required",
            reason=".env sets IMAGE_SIDECAR_API_TOKEN: writes need "
            "`Authorization: Bearer <token>` (unset it there for a token-free dev)",
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="image-sidecar", description="Image sidecar of the Picture This game server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "serve the HTTP API (needs DATABASE_URL and a migrated schema)"),
        ("dev", "migrate and serve, with an embedded PostgreSQL by default"),
    ):
        sub.add_parser(name, help=text).add_argument(
            "--workers",
            help="worker processes on the one port: auto (one per core) or a number "
            "(default: IMAGE_SIDECAR_WORKERS)",
        )
    sub.add_parser("migrate", help="apply pending database migrations, then exit")
    cleanup_parser = sub.add_parser(
        "cleanup", help="delete expired images and orphan files now, print a JSON summary"
    )
    cleanup_parser.add_argument(
        "--dry-run",
        action="store_true",
        help="only count what the run would delete (images, files, bytes, cache entries)",
    )
    cleanup_parser.add_argument(
        "--as-of",
        type=_instant,
        metavar="INSTANT",
        help="take this ISO 8601 instant (e.g. 2030-01-01T00:00Z) as now: delete what will "
        "have expired by then",
    )
    renditions_parser = sub.add_parser(
        "renditions", help="make the web renditions of images stored before they existed"
    )
    renditions_parser.add_argument(
        "--backfill",
        action="store_true",
        required=True,
        help="walk the live images without renditions (resumable: run it again after a stop)",
    )
    scrub_parser = sub.add_parser(
        "scrub",
        help="read the stored files back to the end of the scrub's cycle under way and compare "
        "them with their records; re-make damaged renditions, restore or take out of service "
        "damaged originals (resumable)",
    )
    scrub_parser.add_argument(
        "--slice",
        action="store_true",
        help="check only the slice a scheduled run checks (IMAGE_SCRUB_CYCLE_DAYS)",
    )
    audit_parser = sub.add_parser(
        "audit",
        help="walk the whole store for files that no row names and delete them (paced, "
        "resumable; the nightly cleanup only looks where a write did not settle)",
    )
    audit_parser.add_argument(
        "--dry-run", action="store_true", help="only report the files, delete nothing"
    )
    audit_parser.add_argument(
        "--max-seconds",
        type=float,
        metavar="S",
        help="stop after about this long; the next run goes on from there",
    )
    sub.add_parser(
        "recount",
        help="rebuild the storage figures (/metrics, /api/stats) from the rows; writes wait "
        "while it counts",
    )
    export_parser = sub.add_parser(
        "export",
        help="a game, a round or a player's pictures as one zip: the originals and a JSON "
        "manifest of their records",
    )
    chosen = export_parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--game-id", type=uuid.UUID, help="the game, by its id")
    chosen.add_argument("--game", metavar="CODE", help="the newest game with this room code")
    chosen.add_argument("--player-id", type=uuid.UUID, help="one player's pictures, every game")
    export_parser.add_argument("--round", type=int, metavar="N", help="only this round (a game)")
    export_parser.add_argument("--out", type=Path, required=True, metavar="FILE.zip")
    import_parser = sub.add_parser(
        "import", help="an archive's records and bytes back in, every byte verified first"
    )
    import_parser.add_argument("archive", type=Path, metavar="FILE.zip")
    import_parser.add_argument(
        "--expires-in-days",
        type=int,
        metavar="N",
        help="give the imported pictures this many days from now (default: their own expiry)",
    )
    store_parser = sub.add_parser(
        "migrate-store",
        help="copy every live image and its renditions to the other store, verified "
        "(resumable; the source is left as it is)",
    )
    store_parser.add_argument("--to", choices=["s3", "filesystem"], required=True)
    store_parser.add_argument(
        "--dry-run", action="store_true", help="only count what would be copied"
    )
    args = parser.parse_args(argv)
    configure_logging()
    environ = load_environment()
    _say_what_dotenv_set(args.command)
    if getattr(args, "workers", None) is not None:
        environ["IMAGE_SIDECAR_WORKERS"] = args.workers
    try:
        config = load_config(environ, listening=args.command in ("serve", "dev"))
    except ConfigError as exc:
        raise SystemExit(f"image-sidecar: configuration error: {exc}") from None
    if args.command == "cleanup":
        cleanup(config, dry_run=args.dry_run, as_of=args.as_of)
    elif args.command == "renditions":
        renditions(config)
    elif args.command == "scrub":
        scrub(config, one_slice=args.slice)
    elif args.command == "audit":
        audit(config, dry_run=args.dry_run, max_seconds=args.max_seconds)
    elif args.command == "recount":
        recount(config)
    elif args.command == "export":
        if args.round is not None and args.player_id is not None:
            parser.error("--round needs a game (--game-id or --game)")
        selection = Selection(
            args.game_id, args.game and args.game.upper(), args.round, args.player_id
        )
        export_command(config, selection, args.out)
    elif args.command == "import":
        import_command(config, args.archive, args.expires_in_days)
    elif args.command == "migrate-store":
        migrate_store_command(config, args.to, dry_run=args.dry_run)
    else:
        COMMANDS[args.command](config)
