"""Group commit (issue 17): a batch of requests commits once, a savepoint per message.

A message that kills the process mid-batch takes its batch's uncommitted decisions with
it; on the next runs the batch's messages, seen before, go one at a time: the killer is
quarantined after `max_attempts` tries like before, and the others are answered once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from credmail.bootstrap import App
from credmail.core.values import MailRef, Person
from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES
from credmail.service.links import IssuedLink
from credmail.service.ports import UnitOfWork
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration


class Killed(BaseException):
    """Stands for SIGKILL: no `except Exception` catches it, nothing commits after it."""


class KillingIssuer:
    """Fault injection: issuing a link for one account ends the process (in the middle of
    the batch's transaction, after other messages of the batch were recorded)."""

    def __init__(self, inner: object, victim: str) -> None:
        self.inner, self.victim = inner, victim
        self.kills = 0

    def issue(
        self,
        uow: UnitOfWork,
        person: Person,
        purpose: str,
        address: str,
        now: datetime,
        **options: Any,
    ) -> IssuedLink:
        if person.username == self.victim:
            self.kills += 1
            raise Killed
        return self.inner.issue(uow, person, purpose, address, now, **options)  # type: ignore[attr-defined, no-any-return]

    def mint(
        self, uow: UnitOfWork, selector: str, now: datetime, purpose: str | None = None
    ) -> IssuedLink | None:
        return self.inner.mint(uow, selector, now, purpose)  # type: ignore[attr-defined, no-any-return]


def sample(name: str) -> bytes:
    return next(s for s in SAMPLES if s.name == name).to_bytes()


def test_a_message_that_kills_the_process_is_quarantined_and_its_batch_answered_once(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    mailer = app.pipeline.processor.mailer
    killer = KillingIssuer(mailer.links, victim="G1001")
    mailer.links = killer
    dovecot.append(sample("teacher"))
    dovecot.append(sample("adult-guardian"))  # G1001: kills the process
    dovecot.append(sample("adult-student"))

    runs = []
    for _ in range(10):
        try:
            runs.append(run_once(app))
            break
        except Killed:
            continue

    assert killer.kills == app.settings.mailbox.max_attempts  # then quarantined unparsed
    assert len(runs) == 1
    assert len(dovecot.folder_messages("Credenziali/Errori")) == 1
    assert len(dovecot.folder_messages("Credenziali/Evase")) == 2
    assert dovecot.folder_messages("INBOX") == {}
    recipients = sorted(str(m["To"]) for m in smtp.handler.parsed())
    assert len(recipients) == 2 and len(set(recipients)) == 2  # each answered once
    (item,) = app.review.pending()
    assert item.reasons == ("too_many_attempts",)
    with app.engine.connect() as connection:
        assert connection.scalar(text("SELECT COUNT(*) FROM attempts")) == 0
        assert connection.scalar(text("SELECT COUNT(*) FROM ledger")) == 3


def test_a_failing_message_rolls_back_only_its_savepoint(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """The failing message's partial writes (its ledger row, its token) are undone; the
    batch's other decisions commit with the quarantine, in one transaction."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    mailer = app.pipeline.processor.mailer
    inner = mailer.links

    class Failing(KillingIssuer):
        def issue(
            self,
            uow: UnitOfWork,
            person: Person,
            purpose: str,
            address: str,
            now: datetime,
            **options: Any,
        ) -> IssuedLink:
            if person.username == self.victim:
                uow.ledger.forget_message_ids([1, 2, 3])  # a write the savepoint must undo
                raise RuntimeError("register unavailable")
            return super().issue(uow, person, purpose, address, now, **options)

    mailer.links = Failing(inner, victim="G1001")
    dovecot.append(sample("teacher"))
    dovecot.append(sample("adult-guardian"))
    dovecot.append(sample("adult-student"))

    result = run_once(app)

    assert result["handled"] == {"answered": 2, "errors": 1}
    with app.engine.connect() as connection:
        ids = connection.scalar(text("SELECT COUNT(message_id) FROM ledger"))
        tokens = connection.scalar(text("SELECT COUNT(*) FROM link_tokens"))
    assert ids == 2  # the teacher's row kept its Message-ID: the savepoint undid the write
    assert tokens == 2  # no orphan token from the failed message


def test_a_sender_no_database_takes_fails_only_its_own_message(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """A NUL in the From address (PostgreSQL refuses it in any query): the batch's reads
    made at once leave it out, so only its own message's lookup fails."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    good = sample("adult-guardian")
    bad = good.replace(b"mario.rossi@example.org", b"mario\x00rossi@example.org", 1)
    bad = bad.replace(b"Message-ID:\n <", b"Message-ID:\n <nul-", 1)
    assert b"\x00" in bad and b"<nul-" in bad
    refs = [MailRef("INBOX", 1, str(n), len(raw), b"") for n, raw in enumerate((bad, good))]

    done, stopped = app.pipeline.processor.process_batch(
        list(zip(refs, (bad, good), strict=True)), lambda: False
    )

    outcomes = {ref.key: entry.outcome for ref, entry in done}
    assert not stopped
    assert outcomes["1"] == "answered"
    assert outcomes["0"] in (
        {"errors"} if db_url.startswith("postgresql") else {"errors", "review"}
    )


def test_a_batch_whose_reads_ahead_fail_reads_message_by_message(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reads made at once for a batch are an optimisation: when they fail (here after
    the directory's and the ledger's were made), they are undone and every message is
    still decided, from its own queries."""
    from credmail.adapters.db.repositories.tokens import SqlTokens

    def broken(self: SqlTokens, usernames: object) -> None:
        raise ValueError("a read no database should refuse")

    monkeypatch.setattr(SqlTokens, "prefetch_live", broken)
    app = make_app(server_settings(dovecot, smtp, db_url))
    dovecot.append(sample("teacher"))
    dovecot.append(sample("adult-guardian"))
    dovecot.append(sample("adult-student"))

    result = run_once(app)

    assert result["handled"] == {"answered": 3}
    assert len(smtp.handler.parsed()) == 3


REFUSE_SQLITE = """
CREATE TRIGGER refuse_reply BEFORE INSERT ON outbox
WHEN NEW.recipient_key = 'mario.rossi@example.org'
BEGIN SELECT RAISE(ABORT, 'reply refused'); END
"""
REFUSE_POSTGRES = (
    """
CREATE FUNCTION refuse_reply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.recipient_key = 'mario.rossi@example.org' THEN
    RAISE EXCEPTION 'reply refused' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$
""",
    "CREATE TRIGGER refuse_reply BEFORE INSERT ON outbox "
    "FOR EACH ROW EXECUTE FUNCTION refuse_reply()",
)


def refuse_replies_to_mario(app: App, db_url: str) -> None:
    statements = REFUSE_POSTGRES if db_url.startswith("postgresql") else (REFUSE_SQLITE,)
    with app.engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


def test_an_insert_the_database_refuses_fails_only_its_own_message(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """The batch's inserts are queued and run together (`writes`): when the database
    refuses one (a trigger here), the batch is recorded again a savepoint per message,
    and only the message whose reply was refused is quarantined, its token with it."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    refuse_replies_to_mario(app, db_url)
    dovecot.append(sample("teacher"))
    dovecot.append(sample("adult-guardian"))  # the reply to mario.rossi is refused
    dovecot.append(sample("adult-student"))

    result = run_once(app)

    assert result["handled"] == {"answered": 2, "errors": 1}
    recipients = sorted(str(m["To"]) for m in smtp.handler.parsed())
    assert len(recipients) == 2 and "mario.rossi@example.org" not in recipients
    (item,) = app.review.pending()
    assert item.reasons == ("processing_error",)
    with app.engine.connect() as connection:
        assert connection.scalar(text("SELECT COUNT(*) FROM link_tokens")) == 2
        assert connection.scalar(text("SELECT COUNT(*) FROM ledger")) == 3


def test_a_refused_insert_before_a_quarantine_fails_only_its_own_message(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """The refused reply is still queued when the next message of the batch, one that
    could not be read, is quarantined: the batch is recorded again all the same."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    refuse_replies_to_mario(app, db_url)
    raws = (sample("adult-guardian"), None, sample("teacher"))  # None: too large to fetch
    refs = [MailRef("INBOX", 1, str(n), 100, b"") for n in range(len(raws))]

    done, _ = app.pipeline.processor.process_batch(list(zip(refs, raws, strict=True)), bool)

    outcomes = [entry.outcome for _, entry in done]
    assert outcomes == ["errors", "errors", "answered"]
