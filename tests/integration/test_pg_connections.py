"""PostgreSQL connections: a connection idle a while is pinged (and replaced when its
server is gone), one just used is handed out without a round trip; synchronous_commit
is set for the session only when a transaction needs the other value."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from credmail.adapters.db import engine as engine_module
from credmail.adapters.db.engine import make_engine, upgrade
from credmail.adapters.db.uow import SqlUnitOfWorkFactory
from credmail.adapters.errors import is_transient
from credmail.service.ports import ReviewItem
from tests.conftest import PG_URL

pytestmark = pytest.mark.integration


@pytest.fixture()
def engine() -> Iterator[Engine]:
    made = make_engine(PG_URL)
    yield made
    made.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    seen: list[object] = []
    real = engine.dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        seen.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return seen


def test_a_connection_just_used_is_not_pinged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = pings(engine, monkeypatch)
    first = backend_pid(engine)
    assert [backend_pid(engine) for _ in range(5)] == [first] * 5
    assert seen == []


def test_an_idle_connection_whose_server_is_gone_is_replaced(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = pings(engine, monkeypatch)
    lost = backend_pid(engine)
    other = make_engine(PG_URL)
    with other.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost})
    other.dispose()
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)  # as after a second's wait

    replaced = backend_pid(engine)  # no error: the ping found it dead, the pool reconnected

    assert replaced != lost
    assert len(seen) == 1


def synchronous_commit(engine: Engine, crash_safe: bool) -> str:
    with engine.connect().execution_options(credmail_crash_safe=crash_safe) as connection:
        value = str(connection.exec_driver_sql("SHOW synchronous_commit").scalar_one())
        connection.commit()
    return value


def test_synchronous_commit_follows_each_transaction_and_is_set_only_on_change(
    engine: Engine,
) -> None:
    sets: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("SET synchronous_commit"):
            sets.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    modes = [True, True, True, False, True]
    seen = [synchronous_commit(engine, crash_safe) for crash_safe in modes]
    assert seen == ["off", "off", "off", "on", "off"]
    assert len(sets) == 1  # the session's off, once; the durable one set on for itself

    with engine.connect().execution_options(credmail_crash_safe=True) as connection:
        connection.exec_driver_sql("SELECT 1")
        connection.rollback()  # off was already set: the rollback forgets it anyway
    assert synchronous_commit(engine, True) == "off"
    assert len(sets) == 2


def test_a_durable_transaction_commits_with_synchronous_commit_on_whatever_was_known(
    engine: Engine,
) -> None:
    """Knowledge of the session's value that went wrong (a SET undone by a rollback no
    listener saw) never leaves a durable commit with synchronous_commit off."""
    with engine.connect() as connection:
        connection.exec_driver_sql("SET synchronous_commit = off")  # the session: off
        connection.connection.info["credmail_synchronous_commit"] = "on"  # believed on
        connection.commit()
    assert synchronous_commit(engine, False) == "on"


@pytest.mark.parametrize("prepared_statements", [True, False], ids=["direct", "pgbouncer"])
@pytest.mark.parametrize("in_savepoint", [False, True], ids=["transaction", "savepoint"])
def test_a_connection_lost_mid_transaction_fails_as_transient(
    prepared_statements: bool, in_savepoint: bool
) -> None:
    """The server goes away mid-transaction (an insert queued): what leaves the unit of
    work is the lost connection (retried later), not an error of a rollback listener
    reading the lost connection's state (which would quarantine a healthy message)."""
    engine = make_engine(PG_URL, prepared_statements=prepared_statements)
    upgrade(engine)
    other = make_engine(PG_URL)
    item = ReviewItem(0, datetime.now(UTC), "pending", "adult", "a@x.org", None, "s", (), None)
    try:
        with pytest.raises(Exception) as raised, SqlUnitOfWorkFactory(engine)() as uow:
            lost = uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with uow.savepoint() if in_savepoint else contextlib.nullcontext():
                uow.review.add(item, None)
                with other.connect() as connection:
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost})
                uow.review.count_pending()
        assert is_transient(raised.value), repr(raised.value)
        with SqlUnitOfWorkFactory(engine)(read_only=True) as uow:
            assert uow.review.count_pending() == 0  # and the pool serves a live one again
    finally:
        engine.dispose()
        other.dispose()
