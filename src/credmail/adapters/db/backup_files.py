"""What both databases' backups share: a private temporary file published by rename, the
kind of a backup file told by its first bytes, and one-line wording of file errors."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
SQLITE = "SQLite"
POSTGRESQL = "PostgreSQL"


class BackupError(Exception):
    """A backup or restore that cannot go on, worded for the sysadmin in one line."""


def file_problem(exc: OSError, path: Path) -> str:
    """`/srv/b.pgdump: no space left on device` and the like: what a sysadmin acts on."""
    reasons = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "read-only file system",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "no such file or directory",
        errno.ENOTDIR: "a part of the path is not a directory",
        errno.EISDIR: "is a directory",
        errno.EFBIG: "file too large for this file system",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{path}: {reason}"


def private_temp(target: Path) -> Path:
    """An empty file beside `target`, readable by credmail's user only (0600), created
    here and nowhere else (O_EXCL): the copy is written into it, then renamed."""
    temp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        temp.unlink()
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BackupError(f"cannot write the backup: {file_problem(exc, target.parent)}") from exc
    os.close(fd)
    return temp


def publish(temp: Path, target: Path) -> None:
    """Make the finished copy durable, then give it its name: `target` is either absent,
    the previous file, or the whole new copy, never a part of one."""
    try:
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temp, 0o600)
        os.replace(temp, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        discard(temp)
        raise BackupError(f"cannot write the backup: {file_problem(exc, target)}") from exc


def discard(temp: Path) -> None:
    with contextlib.suppress(OSError):
        temp.unlink()


def kind_of(path: Path) -> str:
    """SQLITE or POSTGRESQL by the file's first bytes; anything else is refused here."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except IsADirectoryError as exc:
        raise BackupError(f"{path} is a directory, not a backup file") from exc
    except OSError as exc:
        raise BackupError(f"cannot read the backup: {file_problem(exc, path)}") from exc
    if head.startswith(SQLITE_MAGIC):
        return SQLITE
    if head.startswith(PGDUMP_MAGIC):
        return POSTGRESQL
    raise BackupError(
        f"{path} is not a credmail backup (neither a SQLite database nor a pg_dump custom-format"
        " file)"
    )


def require_kind(path: Path, expected: str) -> None:
    found = kind_of(path)
    if found != expected:
        raise BackupError(
            f"{path} is a {found} backup; this configuration's database is {expected}"
        )
