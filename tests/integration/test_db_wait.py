"""`credmail db wait`, as the web pods' init container runs it, on SQLite and PostgreSQL:
an unmigrated database is waited for, then one line and exit 1; a migrated one is 0."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_URL
from tests.support.daemon import Daemon
from tests.support.servers import free_port
from tests.support.wiring import IDENTITY

pytestmark = pytest.mark.integration

SCHEMA = "scuola_in_attesa"


def _cli(tmp_path: Path, url: str, **extra: str) -> Daemon:
    settings = {**IDENTITY, "CREDMAIL_DATABASE__URL": url, "CREDMAIL_PRIVACY__LOG_KEY": "k"}
    settings.update({f"CREDMAIL_{key.upper()}": value for key, value in extra.items()})
    return Daemon(tmp_path, settings)


def _fails_after(cli: Daemon, seconds: int, expected: str) -> None:
    started = time.monotonic()
    done = cli.cli("db", "wait", "--timeout", str(seconds))
    assert time.monotonic() - started >= seconds  # it waited
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith("credmail: database ") and expected in line
    assert f"after {seconds} s" in line and "credmail db upgrade" in line


def test_unmigrated_fails_in_one_line_and_migrated_is_ready(db_url: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path, db_url)
    sqlite_file = Path(db_url.removeprefix("sqlite:///")) if "sqlite" in db_url else None
    _fails_after(cli, 1, "does not exist" if sqlite_file else "not at the newest revision")
    assert sqlite_file is None or not sqlite_file.exists()  # it creates nothing
    assert cli.cli("db", "upgrade").returncode == 0
    ready = cli.cli("db", "wait")
    assert (ready.returncode, ready.stdout) == (0, "database at the newest revision\n")


def test_it_returns_as_soon_as_the_daemon_has_migrated(db_url: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path, db_url)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "credmail", "db", "wait", "--timeout", "60"],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)
        assert waiting.poll() is None  # still waiting
        assert cli.cli("db", "upgrade").returncode == 0  # the daemon's init container
        out, err = waiting.communicate(timeout=20)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, err
    assert out == "database at the newest revision\n"


@pytest.fixture
def school_schema() -> Iterator[str]:
    engine = create_engine(PG_URL)
    drop = text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    with engine.begin() as conn:
        conn.execute(drop)
    yield SCHEMA
    with engine.begin() as conn:
        conn.execute(drop)
    engine.dispose()


def test_a_schools_schema_as_the_overlays_use(school_schema: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path, PG_URL, database__schema=school_schema)
    _fails_after(cli, 1, "not at the newest revision")
    assert cli.cli("db", "upgrade").returncode == 0
    assert cli.cli("db", "wait", "--timeout", "0").returncode == 0


def test_an_unreachable_database_is_waited_for_then_named(tmp_path: Path) -> None:
    closed = f"postgresql+psycopg://credmail:secret-pw@127.0.0.1:{free_port()}/credmail"
    cli = _cli(tmp_path, closed)
    _fails_after(cli, 1, "not reachable")
    assert "secret-pw" not in cli.cli("db", "wait", "--timeout", "0").stderr
