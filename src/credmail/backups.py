"""Backup and restore, wired: which database the settings name, which adapter copies it,
the file's name in a directory and the retention, the checks before a restore, and the
upgrade after it. `entrypoints/cli_backup.py` is the command line over it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from credmail.adapters.db import backup_postgres, backup_sqlite
from credmail.adapters.db.backup_files import BackupError
from credmail.adapters.db.engine import known_revisions, make_engine, upgrade
from credmail.config import DatabaseSettings

__all__ = ["BackupError", "restore_backup", "take_backup"]
PREFIX = "credmail-"


def take_backup(
    database: DatabaseSettings, path: Path, keep: int | None
) -> tuple[Path, list[Path]]:
    """The backup's path, and the older backups `keep` removed."""
    if keep is not None and keep < 1:
        raise BackupError("--keep must be 1 or more")
    engine = _engine(database)
    try:
        sqlite = _sqlite_path(engine)
        target = _target(path, ".sqlite3" if sqlite else ".pgdump", keep)
        if sqlite is not None:
            backup_sqlite.backup(sqlite, target)
        else:
            backup_postgres.backup(engine, target)
    finally:
        engine.dispose()
    return target, _prune(target.parent, target.suffix, keep) if keep else []


def restore_backup(database: DatabaseSettings, path: Path, force: bool) -> str:
    """Restore, then upgrade; the revision the backup was taken at."""
    engine = _engine(database)
    try:
        revision = _restore(engine, path, force)
        upgrade(engine)
    finally:
        engine.dispose()
    return revision


def _restore(engine: Engine, path: Path, force: bool) -> str:
    if not path.exists():
        raise BackupError(f"{path}: no such file")
    sqlite = _sqlite_path(engine)
    if sqlite is not None:
        revision = backup_sqlite.backup_revision(path)
        empty = backup_sqlite.is_empty(sqlite)
    else:
        revision = backup_postgres.backup_revision(path, engine)
        empty = backup_postgres.is_empty(engine)
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
        backup_sqlite.restore(path, sqlite)
    elif empty:
        backup_postgres.restore(path, engine)
    else:
        _replace_postgres(engine, path)
    return revision


def _replace_postgres(engine: Engine, path: Path) -> None:
    """--force on PostgreSQL: the tables go before pg_restore runs, so what they held is
    saved first, beside the backup, and named should the restore fail."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%SZ")
    saved = path.parent / f"{PREFIX}before-restore-{stamp}.pgdump"
    backup_postgres.backup(engine, saved)
    backup_postgres.clear(engine)
    try:
        backup_postgres.restore(path, engine)
    except BackupError as failed:
        raise BackupError(f"{failed}; the database as it was is saved in {saved}") from failed


def _engine(database: DatabaseSettings) -> Engine:
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
    """Remove all but the newest `keep` backups credmail named in `directory` (only names
    it gives, credmail-YYYYMMDD-HHMMSSZ: a copy renamed by hand is never counted)."""
    named = re.compile(rf"{re.escape(PREFIX)}\d{{8}}-\d{{6}}Z{re.escape(suffix)}")
    found = [p for p in directory.iterdir() if named.fullmatch(p.name)]
    backups = sorted(found, key=lambda p: p.name, reverse=True)
    removed = backups[keep:]
    for old in removed:
        old.unlink(missing_ok=True)
    return removed
