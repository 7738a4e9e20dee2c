"""Shared fixtures: real Dovecot, real aiosmtpd, real SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, make_url, text

from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import dispose_apps

pytest_plugins = [
    "tests.support.oauth_fixtures",  # OAuth2 server, Dovecot and SMTP with OAuth2
    "tests.support.slapd",  # a throwaway OpenLDAP directory
    "tests.support.webhook_server",  # the school's webhook receiver, on loopback
    "tests.support.browser",  # Chromium through Selenium, `credmail web` on a loopback port
]


def _worker_database(base: str) -> str:
    """Under pytest-xdist each worker gets its own database (`<name>_gw0`, ...), created on
    first use, so workers never drop each other's tables; alone, the database as given."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return base
    url = make_url(base)
    name = f"{url.database}_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.scalar() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    found = url.set(database=name).render_as_string(hide_password=False)
    os.environ["PG_TEST_URL"] = found  # subprocesses and benches started by the tests
    return found


PG_URL = _worker_database(
    os.environ.get("PG_TEST_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    server = Dovecot().start()
    yield server
    server.cleanup()


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Dovecot:
    dovecot_server.reset_mailbox()
    return dovecot_server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def _reset_postgres() -> str:
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'credmail.db'}"
    return _reset_postgres()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'credmail.db'}"


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    dispose_apps()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A command run in a test sets structlog's level (interactive ones: warnings only);
    the next test starts from the configuration this one found."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
