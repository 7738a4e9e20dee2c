"""A batch's directory reads and duplicate checks in a few queries (issue 17), answering
exactly as the one-message reads do, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event

from credmail.core.values import MailRef
from credmail.service.ports import OutgoingMail, TokenRecord
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration

SENDERS = [
    "mario.rossi@example.org",  # one guardian, one student
    "famiglia.bianchi@example.org",  # two guardians sharing the address, two students each
    "g.esposito@example.org",  # a teacher
    "nessuno@example.org",  # nobody on file
]
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def ref(key: str) -> MailRef:
    return MailRef("INBOX", 1, key, 100, b"")


def test_prefetched_people_are_the_ones_each_query_finds(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    with app.uow(read_only=True) as uow:
        alone = {key: uow.directory.people_with_address(key) for key in SENDERS}
        alone_students = {
            key: uow.directory.students_of([p.username for p in alone[key]]) for key in SENDERS
        }

    with app.uow(read_only=True) as uow, statements(app.engine) as seen:
        uow.directory.prefetch(SENDERS)
        prefetching = len(seen)
        batched = {key: uow.directory.people_with_address(key) for key in SENDERS}
        batched_students = {
            key: uow.directory.students_of([p.username for p in batched[key]]) for key in SENDERS
        }

    assert batched == alone
    assert batched_students == alone_students
    assert [p.username for p in batched["famiglia.bianchi@example.org"]] == ["G1002", "G1003"]
    assert [s.username for s in batched_students["famiglia.bianchi@example.org"]] == [
        "S2002",
        "S2003",
    ]
    assert batched["nessuno@example.org"] == []
    assert prefetching <= 4  # owners, people, their students' names, the students
    assert len(seen) == prefetching  # every later read answered from memory


def test_an_address_not_prefetched_is_still_read(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    with app.uow(read_only=True) as uow, statements(app.engine) as seen:
        uow.directory.prefetch(["nessuno@example.org"])
        before = len(seen)
        found = uow.directory.people_with_address("mario.rossi@example.org")
        assert [p.username for p in found] == ["G1001"]
        assert [s.username for s in uow.directory.students_of(["G1001"])] == ["S2001"]
        assert len(seen) > before


def test_a_batch_duplicate_check_sees_what_the_batch_recorded(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    with app.uow() as uow:
        earlier = uow.ledger.add(ref("1"), "<earlier@example.org>", "answered", (), "Evase", NOW)
        uow.commit()

    with app.uow() as uow, statements(app.engine) as seen:
        uow.ledger.prefetch_message_ids(["<earlier@example.org>", "<new@example.org>"])
        prefetching = len(seen)
        found = uow.ledger.find_by_message_id("<earlier@example.org>")
        assert found is not None and found.id == earlier and found.source_key == "1"
        assert uow.ledger.find_by_message_id("<new@example.org>") is None
        assert len(seen) == prefetching
        assert len([s for s in seen if "ledger" in s]) == 1
        first = uow.ledger.add(ref("2"), "<new@example.org>", "review", (), "Revisione", NOW)
        uow.ledger.add(ref("3"), "<new@example.org>", "review", ("dup",), "Revisione", NOW)
        again = uow.ledger.find_by_message_id("<new@example.org>")
        assert again is not None and (again.id, again.outcome, again.moved) == (
            first,
            "review",
            False,
        )


def test_a_rolled_back_savepoint_takes_its_remembered_entries_with_it(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    with app.uow() as uow:
        uow.ledger.prefetch_message_ids(["<gone@example.org>"])
        with pytest.raises(RuntimeError), uow.savepoint():
            uow.ledger.add(ref("4"), "<gone@example.org>", "answered", (), "Evase", NOW)
            raise RuntimeError("this message failed")
        assert uow.ledger.find_by_message_id("<gone@example.org>") is None


def test_values_no_database_takes_are_left_to_their_own_query(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """A Message-ID with undecodable bytes or a NUL must not fail the batch's read."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    with app.uow(read_only=True) as uow:
        uow.ledger.prefetch_message_ids(["<a\udc80@example.org>", "<b\x00@example.org>", "<c@x>"])
        uow.directory.prefetch(["x\udc80@example.org", "mario.rossi@example.org"])
        assert uow.ledger.find_by_message_id("<c@x>") is None
        assert [p.username for p in uow.directory.people_with_address("mario.rossi@example.org")]


def queued(uow: Any, to: str, template: str, at: datetime, account: tuple[str, str] | None) -> None:
    mail = OutgoingMail(f"<{template}.{at.timestamp()}@credmail>", "segreteria@x", to, b"x")
    uow.outbox.add(mail, template, at, account=account)


def counts(uow: Any, now: datetime) -> list[object]:
    return [
        uow.outbox.mail_to("mario.rossi@example.org", now - timedelta(days=1), "rate_limited"),
        uow.outbox.mail_to("mario.rossi@example.org", now - timedelta(minutes=15), "x"),
        uow.outbox.mail_to("famiglia.bianchi@example.org", now - timedelta(days=1), "x"),
        uow.outbox.account_links("G1001", "reset", now - timedelta(minutes=15)),
        uow.outbox.account_links("G1001", "reset", now - timedelta(days=1)),
        uow.outbox.account_links("S2001", "reset", now - timedelta(minutes=15)),
    ]


def test_prefetched_recent_mail_counts_as_each_query_does(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """The limits' counts from one read of the batch's recent mail, kept current by what
    the transaction queues and dropped with a rolled-back savepoint."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    mario = "mario.rossi@example.org"
    with app.uow() as uow:
        queued(uow, mario, "link_adult", NOW - timedelta(minutes=5), ("G1001", "reset"))
        queued(uow, mario, "rate_limited", NOW - timedelta(hours=3), None)
        queued(uow, mario, "link_adult", NOW - timedelta(days=2), ("G1001", "reset"))
        queued(uow, mario, "campaign_new_student", NOW - timedelta(hours=1), ("S2001", "reset"))
        queued(
            uow, "other@example.org", "link_student", NOW - timedelta(minutes=1), ("S2001", "reset")
        )
        uow.commit()

    def in_transaction(prefetch: bool) -> list[list[object]]:
        with app.uow() as uow:
            if prefetch:
                keys = [mario, "famiglia.bianchi@example.org"]
                uow.outbox.prefetch_recent(keys, ["G1001", "S2001"], NOW - timedelta(days=1))
            seen = [counts(uow, NOW)]
            queued(uow, mario, "link_adult", NOW, ("G1001", "reset"))
            seen.append(counts(uow, NOW))
            with pytest.raises(RuntimeError), uow.savepoint():
                queued(uow, mario, "rate_limited", NOW, None)
                raise RuntimeError("this message failed")
            seen.append(counts(uow, NOW))
            return seen

    alone = in_transaction(prefetch=False)
    with statements(app.engine) as seen:
        batched = in_transaction(prefetch=True)
    assert batched == alone
    assert alone[0][0] == (2, 1, 1)  # the day's mail to Mario: a link and a notice
    assert (alone[0][3], alone[1][3]) == ((1, NOW - timedelta(minutes=5)), (2, NOW))  # at once
    counting = [s for s in seen if "count(" in s.lower()]
    assert len(counting) == 6  # only the six counts after the rollback went to the database


def token(username: str, address: str | None) -> TokenRecord:
    return TokenRecord(
        username, "reset", address, NOW, NOW + timedelta(days=1), None, None, "s", "-"
    )


def test_prefetched_live_tokens_revoke_as_each_update_does(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """An account with no live token is not sent a revoking UPDATE; every answer is the
    one the UPDATE gives, as the transaction adds and revokes tokens."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    with app.uow() as uow:
        uow.tokens.add("live-g1001", token("G1001", "mario.rossi@example.org"))
        uow.tokens.add("used-g1002", token("G1002", "famiglia.bianchi@example.org"))
        uow.tokens.consume("used-g1002", NOW)
        uow.commit()

    def in_transaction(prefetch: bool) -> list[int]:
        with app.uow() as uow:
            if prefetch:
                uow.tokens.prefetch_live(["G1001", "G1002", "S2001"])
            revoked = [
                uow.tokens.revoke_active("S2001", "reset", NOW),  # none
                uow.tokens.revoke_active("G1002", "reset", NOW),  # only a spent one
                uow.tokens.revoke_active("G1001", "reset", NOW),  # the live one
                uow.tokens.revoke_active("G1001", "reset", NOW),  # revoked just now
            ]
            uow.tokens.add("a", token("S2001", "a@example.org"))
            uow.tokens.add("b", token("S2001", "b@example.org"))
            revoked += [
                uow.tokens.revoke_active("S2001", "reset", NOW, "a@example.org"),
                uow.tokens.revoke_active("S2001", "reset", NOW, "a@example.org"),
                uow.tokens.revoke_active("S2001", "other", NOW),
            ]
            with pytest.raises(RuntimeError), uow.savepoint():
                raise RuntimeError("this message failed")
            revoked.append(uow.tokens.revoke_active("S2001", "reset", NOW))  # b, read again
            return revoked

    alone = in_transaction(prefetch=False)
    with statements(app.engine) as seen:
        batched = in_transaction(prefetch=True)
    assert batched == alone == [0, 0, 1, 0, 1, 0, 0, 1]
    updates = [s for s in seen if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 3  # G1001's live token, S2001's at a, and after the rollback
