"""Many schools on one PostgreSQL: a schema per school, and PgBouncer (Debian's, for real) in
transaction mode in front, so hundreds of instances never hold more server connections than
its pool allows."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from credmail.adapters.db.engine import HEAD_REVISION, make_engine
from credmail.adapters.db.models import PersonRow
from credmail.config import Settings, load_settings
from credmail.samples import SAMPLES, directory_csv
from tests.conftest import PG_URL
from tests.support.servers import Dovecot, PgBouncer, SmtpServer
from tests.support.wiring import make_app, server_env, write_config

pytestmark = pytest.mark.integration

SCHOOLS = [f"fleet_{n:02d}" for n in range(12)]


def _drop_schemas(names: list[str]) -> None:
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        for name in names:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture
def schemas() -> Iterator[list[str]]:
    _drop_schemas(SCHOOLS)
    yield SCHOOLS
    _drop_schemas(SCHOOLS)


@pytest.fixture
def pgbouncer() -> Iterator[PgBouncer]:
    bouncer = PgBouncer(PG_URL, pool_size=3).start()
    yield bouncer
    bouncer.stop()


def _tables(schema: str) -> set[str]:
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
            {"s": schema},
        )
        found = {row[0] for row in rows}
    engine.dispose()
    return found


def test_two_schools_share_a_database_each_in_its_own_schema(
    dovecot: Dovecot, smtp: SmtpServer, schemas: list[str]
) -> None:
    a, b = schemas[:2]
    public_before = _tables("public")
    school_a = make_app(server_settings_for(dovecot, smtp, PG_URL, a))
    school_b = make_app(server_settings_for(dovecot, smtp, PG_URL, b), directory=False)

    # migrations ran per schema: each holds every table and its own version table
    assert "alembic_version" in _tables(a) and "alembic_version" in _tables(b)
    assert "people" in _tables(a) and _tables(a) == _tables(b)
    assert _tables("public") == public_before
    assert school_a.schema_current() and school_b.schema_current()
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        for name in (a, b):
            sql = f'SELECT version_num FROM "{name}".alembic_version'  # noqa: S608 (ours)
            version = conn.execute(text(sql))
            assert version.scalar() == HEAD_REVISION
    engine.dispose()

    # one school's directory is not the other's
    for app, expected in ((school_a, 11), (school_b, 0)):
        with app.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(PersonRow)) == expected


def server_settings_for(dovecot: Dovecot, smtp: SmtpServer, url: str, schema: str) -> Settings:
    return load_settings(None, environ=server_env(dovecot, smtp, url, database__schema=schema))


def test_many_instances_answer_their_own_mail_through_pgbouncer(
    dovecot: Dovecot, smtp: SmtpServer, schemas: list[str], pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    """Twelve schools, one mailbox and one schema each, `run --once` all at the same time
    through PgBouncer (pool of 3, transaction mode, no prepared statements)."""
    database = make_url(PG_URL).database or ""
    dovecot.add_users(schemas)
    request = next(s for s in SAMPLES if s.name == "adult-guardian").to_bytes()
    directory = tmp_path / "directory.csv"
    directory.write_bytes(directory_csv(date.today()))
    configs = []
    for school in schemas:
        env = server_env(
            dovecot,
            smtp,
            pgbouncer.url(database),
            mailbox__username=school,
            database__schema=school,
            database__pool_size="1",
            database__prepared_statements="false",
        )
        configs.append(write_config(tmp_path / f"{school}.toml", env))
        dovecot.append_to(school, request)

    def credmail(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
        return subprocess.run(
            [sys.executable, "-m", "credmail", "--config", str(config), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    with ThreadPoolExecutor(len(configs)) as pool:
        imported = list(
            pool.map(lambda c: credmail(c, "directory", "import", str(directory)), configs)
        )
        assert [r.returncode for r in imported] == [0] * len(configs), imported[0].stderr
        runs = list(pool.map(lambda c: credmail(c, "run", "--once"), configs))
    assert [r.returncode for r in runs] == [0] * len(configs), [r.stderr for r in runs]

    assert len(smtp.handler.parsed()) == len(schemas)  # one reply per school, none twice
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        for school in schemas:
            sent = conn.execute(text(f'SELECT count(*) FROM "{school}".outbox'))  # noqa: S608
            assert sent.scalar() == 1
    engine.dispose()


def test_two_hundred_clients_hold_no_more_server_connections_than_the_pool(
    pgbouncer: PgBouncer, schemas: list[str]
) -> None:
    """200 instances' engines (no pool of their own, no prepared statements) each run a
    transaction at once; PostgreSQL sees at most PgBouncer's pool of 3, far below its
    max_connections of 100, and every client is served."""
    database = make_url(PG_URL).database or ""
    setup = create_engine(PG_URL)
    with setup.begin() as conn:
        for name in schemas:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    setup.dispose()
    engines = [
        make_engine(
            pgbouncer.url(database),
            schema=schemas[n % len(schemas)],
            pool_size=0,
            prepared_statements=False,
        )
        for n in range(200)
    ]
    monitor = create_engine(PG_URL)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with monitor.connect() as conn:
            while not done.is_set():
                seen.append(
                    conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = :d"
                            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                        ),
                        {"d": database},
                    ).scalar()
                    or 0
                )
                conn.rollback()

    def work(engine: Engine) -> str:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_sleep(0.05)"))
            # twice in one transaction: prepared statements would have been made by now
            for _ in range(6):
                conn.execute(text("SELECT current_schema()"))
            return str(conn.execute(text("SELECT current_schema()")).scalar())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(200) as pool:
            schemas_seen = list(pool.map(work, engines))
    finally:
        done.set()
        watcher.join()
        for engine in engines:
            engine.dispose()
        monitor.dispose()
    # every client ran in its own school's schema (SET LOCAL per transaction)
    assert schemas_seen == [schemas[n % len(schemas)] for n in range(200)]
    assert seen and max(seen) <= 3, max(seen)
