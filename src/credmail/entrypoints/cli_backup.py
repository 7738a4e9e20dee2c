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
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from credmail.entrypoints.cli_base import Context

EXIT_FAILURE = 1
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
    from credmail.backups import BackupError, take_backup

    try:
        target, removed = take_backup(ctx.settings.database, args.path, args.keep)
    except BackupError as exc:
        print(f"credmail: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"backup written: {target} ({target.stat().st_size} bytes)")
    for old in removed:
        print(f"older backup removed: {old}")
    return 0


def cmd_db_restore(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.backups import BackupError, restore_backup

    try:
        revision = restore_backup(ctx.settings.database, args.path, args.force)
    except BackupError as exc:
        print(f"credmail: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"restored {args.path} (taken at revision {revision}); database at the newest revision")
    return 0
