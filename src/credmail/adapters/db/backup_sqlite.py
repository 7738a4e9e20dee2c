"""SQLite backup and restore through SQLite's online backup API.

The backup reads one consistent snapshot (a read transaction: the daemon and the web app
keep writing meanwhile, WAL readers never block them) into a private temporary file
beside the target, switches the copy out of WAL mode so it is one self-contained file,
checks it, and renames it into place. A restore copies the backup the same way into a
temporary file beside the database, removes the old database's -wal and -shm (a stale
WAL replayed onto another database would corrupt it), and renames it into place."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from credmail.adapters.db.backup_files import (
    SQLITE,
    BackupError,
    discard,
    file_problem,
    private_temp,
    publish,
    require_kind,
)

BUSY_TIMEOUT_MS = 30_000


def backup(database: Path, target: Path) -> None:
    """A consistent copy of `database` at `target` (0600), while others write to it."""
    if not database.is_file():
        raise BackupError(f"database {database} does not exist")
    temp = private_temp(target)
    with (
        _removed_on_failure(temp, "backup", target),
        closing(sqlite3.connect(database, timeout=BUSY_TIMEOUT_MS / 1000)) as source,
        closing(sqlite3.connect(temp)) as copy,
    ):
        source.backup(copy)  # one step: one read transaction, one snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # no -wal beside the copy
        _check(copy, target)
    publish(temp, target)


def backup_revision(path: Path) -> str:
    """The schema revision a SQLite backup was taken at; refuses any other file."""
    require_kind(path, SQLITE)
    try:
        with _read_only(path) as copy:
            _check(copy, path)
            row = copy.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a credmail backup ({exc})") from exc
    if row is None:
        raise BackupError(f"{path} is not a credmail backup (no schema revision in it)")
    return str(row[0])


def is_empty(database: Path) -> bool:
    """True when the file is absent or holds no table: a new install."""
    if not database.exists():
        return True
    try:
        with _read_only(database) as connection:
            count = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error as exc:
        raise BackupError(f"cannot read database {database} ({exc})") from exc
    return int(count) == 0


def restore(path: Path, database: Path) -> None:
    """Put the backup at `path` in place of `database` (the daemon is stopped)."""
    temp = private_temp(database)
    with (
        _removed_on_failure(temp, "restore", database),
        _read_only(path) as source,
        closing(sqlite3.connect(temp)) as copy,
    ):
        source.backup(copy)
    for leftover in (database.with_name(database.name + s) for s in ("-wal", "-shm")):
        try:
            leftover.unlink(missing_ok=True)
        except OSError as exc:
            discard(temp)
            raise BackupError(f"restore failed: {file_problem(exc, leftover)}") from exc
    publish(temp, database)


@contextmanager
def _removed_on_failure(temp: Path, verb: str, target: Path) -> Iterator[None]:
    """The temporary copy goes if anything fails; a SQLite error is said in one line."""
    try:
        yield
    except sqlite3.Error as exc:
        discard(temp)
        raise BackupError(f"{verb} failed: {_sqlite_problem(exc, target)}") from exc
    except BaseException:
        discard(temp)
        raise


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A backup file opened without writing anything beside it (no -shm, no lock files)."""
    connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        yield connection
    finally:
        connection.close()


def _check(connection: sqlite3.Connection, shown: Path) -> None:
    found = connection.execute("PRAGMA quick_check").fetchone()[0]
    if found != "ok":
        raise BackupError(f"{shown}: the copy failed SQLite's check ({found})")


def _sqlite_problem(exc: sqlite3.Error, target: Path) -> str:
    text = str(exc)
    if "disk is full" in text:
        return f"{target}: no space left on device"
    if "readonly" in text or "read-only" in text:
        return f"{target}: read-only file system"
    return f"{target}: {text}"
