"""`credmail db backup PATH`, `credmail db restore PATH` and `credmail db downgrade`.

backup: while the daemon and the web app run; SQLite through its online backup API,
PostgreSQL through pg_dump of the school's schema. PATH a directory: the file is named
`credmail-YYYYMMDD-HHMMSSZ.sqlite3` (or `.pgdump`) in it, and `--keep N` removes the
older such files beyond the newest N (the nightly timer's retention).

restore: onto a new install (the daemon and the web app stopped); refuses a database that
holds tables unless `--force`, then upgrades the restored schema to the newest revision.

downgrade: refused in one line; the way back is the backup taken before an upgrade."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from credmail.adapters.db.backup_files import BackupError

if TYPE_CHECKING:
    from credmail.entrypoints.cli import Context

EXIT_FAILURE = 1
PREFIX = "credmail-"
DOWNGRADE_REFUSED = (
    "credmail: downgrades are not supported; to go back to an older version, stop credmail,"
    " restore the backup taken before the upgrade with that version's `credmail db restore"
    " --force`"
)


def add_parsers(db: Any) -> None:
    backup = db.add_parser("backup", help="a consistent copy of the database, while it runs")
    backup.add_argument("path", type=Path, help="the backup file, or a directory to put it in")
    backup.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="PATH a directory: keep only the newest N credmail backups in it",
    )
    backup.set_defaults(handler=cmd_db_backup)
    restore = db.add_parser("restore", help="put a backup in place, then upgrade it")
    restore.add_argument("path", type=Path, help="a file written by `credmail db backup`")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that already holds tables"
    )
    restore.set_defaults(handler=cmd_db_restore)
    db.add_parser("downgrade", help="refused: restore a backup instead").set_defaults(
        handler=cmd_db_downgrade
    )


def cmd_db_downgrade(args: argparse.Namespace, ctx: Context) -> int:
    print(DOWNGRADE_REFUSED, file=sys.stderr)
    return EXIT_FAILURE


def cmd_db_backup(args: argparse.Namespace, ctx: Context) -> int:
    if args.keep is not None and args.keep < 1:
        print("credmail: --keep must be 1 or more", file=sys.stderr)
        return EXIT_FAILURE
    engine = _engine(ctx)
    try:
        sqlite = _sqlite_path(engine)
        target = _target(args.path, ".sqlite3" if sqlite else ".pgdump", args.keep)
        if sqlite is not None:
            from credmail.adapters.db import backup_sqlite

            backup_sqlite.backup(sqlite, target)
        else:
            from credmail.adapters.db import backup_postgres

            backup_postgres.backup(engine, target)
        removed = _prune(target.parent, target.suffix, args.keep) if args.keep else []
    except BackupError as exc:
        print(f"credmail: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        engine.dispose()
    size = target.stat().st_size
    print(f"backup written: {target} ({size} bytes)")
    for old in removed:
        print(f"older backup removed: {old}")
    return 0


def cmd_db_restore(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.adapters.db.engine import upgrade

    engine = _engine(ctx)
    try:
        revision = _restore(engine, args.path, args.force)
        upgrade(engine)
    except BackupError as exc:
        print(f"credmail: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        engine.dispose()
    print(f"restored {args.path} (taken at revision {revision}); database at the newest revision")
    return 0


def _restore(engine: Engine, path: Path, force: bool) -> str:
    from credmail.adapters.db.engine import known_revisions

    if not path.exists():
        raise BackupError(f"{path}: no such file")
    sqlite = _sqlite_path(engine)
    if sqlite is not None:
        from credmail.adapters.db import backup_sqlite as sqlite_side

        revision = sqlite_side.backup_revision(path)
        empty = sqlite_side.is_empty(sqlite)
    else:
        from credmail.adapters.db import backup_postgres as pg_side

        revision = pg_side.backup_revision(path, engine)
        empty = pg_side.is_empty(engine)
    if revision not in known_revisions():
        raise BackupError(
            f"{path} was taken by a newer credmail (schema revision {revision}); restore it"
            " with that version or a later one"
        )
    if not empty and not force:
        raise BackupError(
            "the database already holds tables; restore onto a new install, or give --force"
            " to replace them (stop the daemon and the web app first)"
        )
    if sqlite is not None:
        sqlite_side.restore(path, sqlite)
    else:
        if not empty:
            pg_side.clear(engine)
        pg_side.restore(path, engine)
    return revision


def _engine(ctx: Context) -> Engine:
    from credmail.adapters.db.engine import make_engine

    database = ctx.settings.database
    return make_engine(database.url, schema=database.schema_, pool_size=0)


def _sqlite_path(engine: Engine) -> Path | None:
    """The SQLite file, or None for PostgreSQL."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("the database is in memory: there is nothing to back up or restore")
    return Path(url.database)


def _target(path: Path, suffix: str, keep: int | None) -> Path:
    if path.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%SZ")
        return path / f"{PREFIX}{stamp}{suffix}"
    if keep is not None:
        raise BackupError(f"--keep needs a directory as PATH; {path} is not one")
    if not path.parent.is_dir():
        raise BackupError(f"cannot write the backup: {path.parent}: no such directory")
    return path


def _prune(directory: Path, suffix: str, keep: int) -> list[Path]:
    """Remove all but the newest `keep` backups credmail named in `directory`."""
    backups = sorted(directory.glob(f"{PREFIX}*{suffix}"), key=lambda p: p.name, reverse=True)
    removed = backups[keep:]
    for old in removed:
        old.unlink(missing_ok=True)
    return removed
