"""Queued inserts (`adapters/db/writes.py`, issue 17): a transaction's inserts run
together just before its next statement, on SQLite and PostgreSQL; every read sees them,
a rollback drops them, and on PostgreSQL a batch's ledger entries, tokens, replies and
review items take one statement per table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from credmail.adapters.db import writes
from credmail.adapters.db.engine import make_engine, upgrade
from credmail.adapters.db.uow import SqlUnitOfWorkFactory
from credmail.core.values import MailRef
from credmail.service.ports import OutgoingMail, ReviewItem, TokenRecord
from tests.conftest import PG_URL
from tests.integration.test_batch_reads import statements

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def item(n: int) -> ReviewItem:
    return ReviewItem(0, NOW, "pending", "adult", f"p{n}@example.org", f"<r{n}@x>", "s", (), b"r")


def mail(n: int) -> OutgoingMail:
    return OutgoingMail(f"<reply{n}@credmail>", "segreteria@x", f"p{n}@example.org", b"x")


def token(n: int) -> TokenRecord:
    expires = NOW.replace(hour=10)
    return TokenRecord(f"U{n}", "reset", f"p{n}@example.org", NOW, expires, None, None, "s", "h")


def handle(uow: object, n: int) -> int:
    """What recording one request writes: a ledger entry, a token, a reply."""
    ref = MailRef("INBOX", 1, str(n), 100, b"")
    entry_id: int = uow.ledger.add(ref, f"<m{n}@x>", "answered", (), "Evase", NOW)  # type: ignore[attr-defined]
    uow.tokens.add(f"sel{n}", token(n))  # type: ignore[attr-defined]
    uow.outbox.add(mail(n), "link_adult", NOW, ledger_id=entry_id)  # type: ignore[attr-defined]
    return entry_id


def inserts(seen: list[str], table: str) -> int:
    return sum(1 for sql in seen if sql.lstrip().upper().startswith(f"INSERT INTO {table.upper()}"))


def test_a_batch_inserts_once_per_table_where_ids_are_drawn_ahead(engine: Engine) -> None:
    uows = SqlUnitOfWorkFactory(engine)
    with uows() as uow, statements(engine) as seen:
        uow.ledger.expect(5)
        uow.outbox.add(mail(9), "rate_limited", NOW)  # queued first, yet runs after the
        ids = [handle(uow, n) for n in range(5)]  # ledger entries its later rows point at
        uow.review.add(item(1), ids[1])
        uow.commit()

    with engine.connect() as connection:
        stored = connection.execute(text("SELECT id, source_key FROM ledger ORDER BY id")).all()
        replies = connection.execute(text("SELECT ledger_id FROM outbox ORDER BY id")).scalars()
        assert list(replies) == [None, *ids]  # each reply points at its own entry
    assert [(entry_id, str(n)) for n, entry_id in enumerate(ids)] == [tuple(r) for r in stored]
    if engine.dialect.name == "postgresql":
        assert [inserts(seen, table) for table in ("ledger", "link_tokens", "outbox")] == [1, 1, 1]
    else:  # each ledger insert runs at once to read its id back, and runs what was queued
        assert [inserts(seen, table) for table in ("ledger", "link_tokens", "outbox")] == [5, 5, 6]
    assert inserts(seen, "review_items") == 1


def test_every_read_sees_the_inserts_queued_before_it(engine: Engine) -> None:
    uows = SqlUnitOfWorkFactory(engine)
    with uows() as uow:
        uow.review.add(item(1), None)
        uow.outbox.add(mail(1), "link_adult", NOW)
        assert uow.review.count_pending() == 1
        assert uow.outbox.knows_message_id(["<reply1@credmail>"])
        uow.tokens.add("sel1", token(1))
        assert uow.tokens.revoke_active("U1", "reset", NOW) == 1  # the UPDATE finds it
        uow.commit()
    with uows(read_only=True) as uow:
        assert uow.tokens.active("U1", "reset", NOW) == []


def test_a_rollback_drops_what_was_queued_and_nothing_more(engine: Engine) -> None:
    uows = SqlUnitOfWorkFactory(engine)
    with uows() as uow:
        uow.review.add(item(1), None)
        with pytest.raises(RuntimeError), uow.savepoint():
            uow.review.add(item(2), None)
            raise RuntimeError("this message failed")
        uow.review.add(item(3), None)
        uow.commit()
    with uows() as uow:
        uow.review.add(item(4), None)  # never committed: the unit of work rolls back
    with uows() as uow:  # the same pooled connection: nothing queued carries over
        uow.outbox.add(mail(5), "link_adult", NOW)
        uow.commit()
    with uows(read_only=True) as uow:
        assert [i.sender for i in uow.review.pending()] == ["p1@example.org", "p3@example.org"]
        assert uow.outbox.knows_message_id(["<reply5@credmail>"])


def test_a_refused_insert_fails_the_savepoint_that_queued_it(engine: Engine) -> None:
    uows = SqlUnitOfWorkFactory(engine)
    with uows() as uow:
        uow.outbox.add(mail(1), "link_adult", NOW)
        uow.commit()
    with uows() as uow:
        uow.outbox.add(mail(2), "link_adult", NOW)
        with pytest.raises(IntegrityError), uow.savepoint():
            uow.outbox.add(mail(1), "link_adult", NOW)  # the same Message-ID again
        uow.commit()
    with engine.connect() as connection:
        ids = connection.execute(text("SELECT message_id FROM outbox ORDER BY id")).scalars()
        assert list(ids) == ["<reply1@credmail>", "<reply2@credmail>"]


def test_ledger_ids_come_from_the_schools_own_sequence() -> None:
    """Shared PostgreSQL (issue 18): each school's schema has its own ledger sequence."""
    engines = [make_engine(PG_URL, schema=name) for name in ("scuola_a", "scuola_b")]
    try:
        with engines[0].begin() as connection:
            for name in ("scuola_a", "scuola_b"):
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        drawn = []
        for engine in engines:
            upgrade(engine)
            with SqlUnitOfWorkFactory(engine)() as uow:
                uow.ledger.expect(2)
                drawn.append([handle(uow, n) for n in range(3)])  # one more than expected
                uow.commit()
        assert drawn == [[1, 2, 3], [1, 2, 3]]
        with engines[1].connect() as connection:
            rows = connection.execute(text('SELECT id FROM "scuola_b".ledger ORDER BY id'))
            assert list(rows.scalars()) == [1, 2, 3]
    finally:
        for engine in engines:
            engine.dispose()


def test_a_long_run_of_inserts_holds_no_more_than_its_cap(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first start over a large unordered folder adds an entry per message: the queue
    runs whenever a statement's rows reach the cap, not all at the end."""
    monkeypatch.setattr(writes, "MOST_QUEUED", 3)
    with SqlUnitOfWorkFactory(engine)() as uow, statements(engine) as seen:
        for n in range(7):
            uow.review.add(item(n), None)
        assert inserts(seen, "review_items") == 2  # rows 1-3 and 4-6; the 7th waits
        uow.commit()
    assert inserts(seen, "review_items") == 3
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT COUNT(*) FROM review_items")) == 7
