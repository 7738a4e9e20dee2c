"""Engine creation (SQLite pragmas, PostgreSQL driver) and Alembic upgrades."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool


def make_engine(
    url: str, *, schema: str = "", pool_size: int = 5, prepared_statements: bool = True
) -> Engine:
    """Create an engine; nothing connects until first use.

    PostgreSQL only: `schema` is the school's own schema in a shared database (every
    transaction starts with SET LOCAL search_path, which holds behind PgBouncer's transaction
    pooling too); `pool_size` 0 keeps no connection open between uses;
    `prepared_statements=False` for PgBouncer in transaction mode."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30})
        if parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            event.listen(engine, "connect", lambda *_: _make_private(path))
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    options: dict[str, Any] = {}
    if pool_size == 0:
        options["poolclass"] = NullPool
    else:
        options["pool_size"] = pool_size
    if not prepared_statements:
        options["connect_args"] = {"prepare_threshold": None}
    engine = create_engine(parsed, **options)
    _ping_when_idle(engine)
    if prepared_statements:
        event.listen(engine, "begin", _postgres_begin)
        event.listen(engine, "rollback", _forget_commit_mode)
    else:  # behind PgBouncer: no setting may outlive its transaction
        event.listen(engine, "begin", _postgres_begin_local)
    if schema:
        engine.update_execution_options(**{SCHEMA: schema})
        event.listen(engine, "begin", _set_search_path)
    return engine


SCHEMA = "credmail_schema"
IDLE_PING_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, for a pooled connection idle a second or more: one
    that was just used is handed out without a round trip (a batch's units of work and
    the outbox's per-mail transactions follow each other closely), one that waited in
    the pool (and may have lost its server meanwhile) is pinged, and replaced when the
    ping finds it disconnected."""

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError("idle connection lost its server") from exc
            raise

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def _set_search_path(connection: Any) -> None:
    """The first statement of every transaction: this school's schema and no other."""
    schema = connection.get_execution_options()[SCHEMA]
    connection.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')


def schema_of(engine: Engine) -> str | None:
    """The school's schema in a shared PostgreSQL database, or None (the default one)."""
    return engine.get_execution_options().get(SCHEMA) or None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # per transaction below; FULL unless asked
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(_BUSY_TIMEOUT)
    cursor.execute("PRAGMA secure_delete=ON")  # dropped bodies are zeroed, not left in free pages
    cursor.close()


def _make_private(database: Path) -> None:
    """The database and its -wal/-shm files are for credmail's user only (0600), also when
    an older version created them readable."""
    for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        try:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
        except FileNotFoundError:
            pass


def checkpoint(engine: Engine) -> None:
    """SQLite: copy the WAL into the database and truncate it, so dropped bodies do not
    linger in the -wal file. PostgreSQL manages its own files."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


READ_ONLY = "credmail_read_only"
CRASH_SAFE = "credmail_crash_safe"
"""Execution option: this transaction must survive a crash of credmail's process, not
necessarily of the machine or the database server (its loss only repeats work: an
attempt counted again, a move or checkpoint redone, a reply resent with its Message-ID).
SQLite commits it without fsync (WAL, synchronous=NORMAL); PostgreSQL with
synchronous_commit off. Every other transaction is fsynced before COMMIT returns
(synchronous=FULL, synchronous_commit on), and an fsynced commit also makes every
earlier one durable: the WAL is written in order."""
HEAD_REVISION = "0014_stats_indexes"  # the newest in migrations/versions (a test checks)


def _sqlite_begin_immediate(connection: Any) -> None:
    """Writers take the lock up front (and wait for it); readers never block a writer.
    The safety level can only change outside a transaction: set it before BEGIN."""
    options = connection.get_execution_options()
    if options.get(READ_ONLY, False):
        connection.exec_driver_sql("BEGIN")
        return
    light = options.get(CRASH_SAFE, False)
    connection.exec_driver_sql(f"PRAGMA synchronous={'NORMAL' if light else 'FULL'}")
    _take_write_lock(connection.connection.dbapi_connection)


LOCK_TIMEOUT_SECONDS = 30.0
LOCK_POLL_SECONDS = 0.001
_BUSY_TIMEOUT = f"PRAGMA busy_timeout={int(LOCK_TIMEOUT_SECONDS * 1000)}"


def _take_write_lock(dbapi_connection: Any) -> None:
    """BEGIN IMMEDIATE, retried every millisecond while another process writes.

    SQLite's own busy handler sleeps 1, 2, 5, ... then 50 and 100 ms between tries: a
    writer that has waited a while sleeps through the gaps between another process's
    transactions (the deciding process's batch, the delivery process's mails) and
    starves. Polling each millisecond takes the lock within a millisecond of its release.
    A failure is raised as SQLAlchemy's OperationalError, like any other statement's (a
    busy database is transient: the work is tried again, not quarantined).
    """
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise OperationalError("BEGIN IMMEDIATE", (), exc) from exc
            time.sleep(LOCK_POLL_SECONDS)
    finally:
        dbapi_connection.execute(_BUSY_TIMEOUT)


SYNCHRONOUS_COMMIT = "credmail_synchronous_commit"


def _postgres_begin(connection: Any) -> None:
    """synchronous_commit for this transaction. A durable one sets it on for itself (SET
    LOCAL: whatever the session holds). A crash-safe one needs it off: set for the
    session, and only when the connection is not known to hold it already (the outbox's
    per-mail transactions, all crash-safe, set it once, not once a mail). What is known
    can only err towards on (a SET undone by a rollback the listener did not see), which
    makes a crash-safe commit durable, never a durable one less so."""
    options = connection.get_execution_options()
    if options.get(READ_ONLY, False):
        return  # nothing to commit: either value will do
    if not options.get(CRASH_SAFE, False):
        connection.exec_driver_sql("SET LOCAL synchronous_commit = on")
        return
    state = connection.connection.info
    if state.get(SYNCHRONOUS_COMMIT) != "off":
        connection.exec_driver_sql("SET synchronous_commit = off")
        state[SYNCHRONOUS_COMMIT] = "off"


def _forget_commit_mode(connection: Any) -> None:
    """A rollback undoes a SET made in its transaction: set it again next time."""
    if not connection.invalidated:  # a lost connection's settings go with it
        connection.connection.info.pop(SYNCHRONOUS_COMMIT, None)


def _postgres_begin_local(connection: Any) -> None:
    if connection.get_execution_options().get(CRASH_SAFE, False):
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


def _alembic_config() -> Config:
    """Alembic is imported only here: a daemon that is up to date never loads it."""
    from alembic.config import Config

    import credmail_migrations

    config = Config()
    config.set_main_option("script_location", str(Path(credmail_migrations.__file__).parent))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` on the engine's database."""
    from alembic import command

    config = _alembic_config()
    schema = schema_of(engine)
    if schema:
        _create_schema(engine, schema)
    with engine.connect() as connection, _foreign_keys_off(connection), connection.begin():
        config.attributes["connection"] = connection
        config.attributes["schema"] = schema
        command.upgrade(config, revision)
        _check_foreign_keys(connection)


@contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite: no foreign key is enforced while migrations run. A batch migration makes a
    table again (copy, DROP, rename); with foreign keys on, the DROP deletes the rows
    first, and ON DELETE CASCADE empties the tables that point at it (people's emails and
    guardianships went so in 0005 and 0008). Set outside any transaction, where SQLite
    honours it; `_check_foreign_keys` checks them all before the commit instead."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise RuntimeError(f"migration left rows pointing at nothing in {', '.join(tables)}")


def known_revisions() -> set[str]:
    """Every revision in migrations/versions: a backup at any other came from a newer
    credmail."""
    from alembic.script import ScriptDirectory

    return {
        script.revision
        for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()
    }


class SchemaMissing(Exception):
    """The school's schema does not exist and its role may not create it."""

    def __init__(self, schema: str) -> None:
        super().__init__(f"schema {schema} does not exist")
        self.schema = schema


INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE


def _create_schema(engine: Engine, schema: str) -> None:
    """Create the school's schema unless it exists (the provider may have created it, owned
    by the school's role, with no right to create schemas left to that role)."""
    with engine.begin() as connection:
        found = connection.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}
        ).first()
        if found is not None:
            return
        try:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        except ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
                raise SchemaMissing(schema) from exc
            raise


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version", schema=schema_of(engine)):
            return False
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return current == HEAD_REVISION
