"""`credmail db backup` and `credmail db restore` on SQLite and PostgreSQL, as subprocesses.

A backup taken while another connection keeps committing is one consistent snapshot
(every row up to some point, none after, no gap), private (0600), one self-contained file;
a restore onto a new install gives those rows back at the newest revision; every refusal
and failure is one line, no traceback: a database that holds tables without --force, a
missing file, a file of another kind, a full disk, a read-only target, a pg_dump older
than the server."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from credmail.adapters.db.engine import HEAD_REVISION
from tests.conftest import _reset_postgres
from tests.support.daemon import Daemon
from tests.support.wiring import IDENTITY

pytestmark = pytest.mark.integration


def _cli(workdir: Path, url: str) -> Daemon:
    workdir.mkdir(exist_ok=True)
    settings = {**IDENTITY, "CREDMAIL_DATABASE__URL": url, "CREDMAIL_PRIVACY__LOG_KEY": "k"}
    return Daemon(workdir, settings)


def _one_line_failure(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith("credmail: ")
    for part in expected:
        assert part.lower() in line.lower(), line
    return line


def _audit_ids(url: str) -> list[int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM audit_log ORDER BY id")).scalars().all()
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert revision == HEAD_REVISION
    return list(ids)


class Writer(threading.Thread):
    """Commits one audit row after another until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(url, connect_args={"timeout": 30} if "sqlite" in url else {})
        self.stopped = threading.Event()
        self.written = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO audit_log (at, actor, source, action) "
                        "VALUES (:at, 'test', 'cli', 'written')"
                    ),
                    {"at": datetime.now(UTC)},
                )
            self.written += 1

    def stop(self) -> int:
        self.stopped.set()
        self.join(30)
        self.engine.dispose()
        return self.written


@pytest.fixture
def fresh(db_url: str, tmp_path: Path) -> Iterator[tuple[Daemon, str]]:
    cli = _cli(tmp_path / "school", db_url)
    assert cli.cli("db", "upgrade").returncode == 0
    yield cli, db_url


def test_a_backup_under_writes_is_one_snapshot_and_restores_onto_a_new_install(
    fresh: tuple[Daemon, str], tmp_path: Path
) -> None:
    cli, url = fresh
    writer = Writer(url)
    writer.start()
    try:
        while writer.written < 50:
            threading.Event().wait(0.01)
        done = cli.cli("db", "backup", str(tmp_path))
    finally:
        written = writer.stop()
    assert done.returncode == 0, done.stderr
    (backup,) = tmp_path.glob("credmail-*")
    assert done.stdout.startswith(f"backup written: {backup} (")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".credmail-*"))  # no temporary file left
    if "sqlite" in url:
        assert backup.suffix == ".sqlite3"
        assert not Path(f"{backup}-wal").exists()
        with sqlite3.connect(backup) as copy:
            assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    else:
        assert backup.suffix == ".pgdump"

    # disaster: the database is gone; a new install gets the backup
    if "sqlite" in url:
        new_url = f"sqlite:///{tmp_path / 'new' / 'credmail.db'}"
    else:
        new_url = _reset_postgres()
    restored = _cli(tmp_path / "new", new_url).cli("db", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert f"taken at revision {HEAD_REVISION}" in restored.stdout
    ids = _audit_ids(new_url)
    assert 50 <= len(ids) < written  # taken mid-stream
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # every row up to a point, no gap


def test_restore_refuses_what_it_must_in_one_line(
    fresh: tuple[Daemon, str], tmp_path: Path
) -> None:
    cli, url = fresh
    backup = tmp_path / "nightly.bak"
    assert cli.cli("db", "backup", str(backup)).returncode == 0
    _one_line_failure(cli.cli("db", "restore", str(backup)), "already holds tables", "--force")
    _one_line_failure(cli.cli("db", "restore", str(tmp_path / "none")), "no such file")
    _one_line_failure(cli.cli("db", "restore", str(tmp_path)), "is a directory")
    (tmp_path / "notes.txt").write_text("not a backup\n")
    _one_line_failure(cli.cli("db", "restore", str(tmp_path / "notes.txt")), "not a credmail")
    other = tmp_path / "other.bak"
    if "sqlite" in url:
        other.write_bytes(b"PGDMP" + bytes(200))
        _one_line_failure(cli.cli("db", "restore", str(other)), "PostgreSQL backup", "SQLite")
        with sqlite3.connect(other.with_suffix(".db")) as conn:
            conn.execute("CREATE TABLE t (x)")
        _one_line_failure(cli.cli("db", "restore", str(other.with_suffix(".db"))), "not a credmail")
    else:
        with sqlite3.connect(other) as conn:
            conn.execute("CREATE TABLE t (x)")
        _one_line_failure(cli.cli("db", "restore", str(other)), "SQLite backup", "PostgreSQL")
    forced = cli.cli("db", "restore", "--force", str(backup))
    assert forced.returncode == 0, forced.stderr
    if "sqlite" not in url:  # the tables go before pg_restore: what they held is kept first
        (saved,) = tmp_path.glob("credmail-before-restore-*.pgdump")
        assert saved.stat().st_mode & 0o777 == 0o600 and saved.stat().st_size > 0
    _one_line_failure(cli.cli("db", "downgrade"), "not supported", "db restore")


def test_keep_leaves_the_newest_backups(fresh: tuple[Daemon, str], tmp_path: Path) -> None:
    cli, url = fresh
    backups = tmp_path / "backups"
    backups.mkdir()
    suffix = ".sqlite3" if "sqlite" in url else ".pgdump"
    for name in ("credmail-20260101-000000Z", "credmail-20260102-000000Z"):
        (backups / f"{name}{suffix}").write_bytes(b"old")
    (backups / "notes.txt").write_text("kept")
    by_hand = f"credmail-prima-aggiornamento{suffix}"  # sorts after every date: not counted
    (backups / by_hand).write_bytes(b"a copy renamed by hand")
    done = cli.cli("db", "backup", "--keep", "2", str(backups))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in backups.iterdir())
    assert names[0] == f"credmail-20260102-000000Z{suffix}" and names[-1] == "notes.txt"
    assert by_hand in names and len(names) == 4 and "older backup removed" in done.stdout
    _one_line_failure(cli.cli("db", "backup", "--keep", "2", str(backups / "x")), "directory")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs: the backup does not fit."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    # scripts/test runs as root (it installs Debian packages), as CI does: never a skip
    assert made.returncode == 0, f"cannot mount a small tmpfs: {made.stderr!r}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_or_read_only_target_fails_in_one_line_and_leaves_nothing(
    fresh: tuple[Daemon, str], small_disk: Path
) -> None:
    cli, _url = fresh
    _one_line_failure(cli.cli("db", "backup", str(small_disk / "b")), "no space left on device")
    assert list(small_disk.iterdir()) == []  # the part written is removed
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    _one_line_failure(cli.cli("db", "backup", str(small_disk / "b")), "read-only file system")


def test_a_pg_dump_older_than_the_server_is_named(tmp_path: Path) -> None:
    url = _reset_postgres()
    cli = _cli(tmp_path / "school", url)
    assert cli.cli("db", "upgrade").returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("pg_dump", "pg_restore"):
        fake = bin_dir / program
        fake.write_text(f"#!/bin/sh\necho '{program} (PostgreSQL) 9.6.24'\n")
        fake.chmod(0o755)
    cli.env["PATH"] = f"{bin_dir}{os.pathsep}{cli.env['PATH']}"
    _one_line_failure(cli.cli("db", "backup", str(tmp_path / "b")), "pg_dump is version 9")
    cli.env["PATH"] = str(bin_dir / "nothing")
    _one_line_failure(cli.cli("db", "backup", str(tmp_path / "b")), "pg_dump not found")
