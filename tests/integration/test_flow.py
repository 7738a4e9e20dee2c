"""The whole flow against real Dovecot, real aiosmtpd, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from credmail.adapters.db.models import LedgerRow, OutboxRow
from credmail.core.parse import parse_message
from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES, Sample
from credmail.service.links import check_token
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import link_in, make_app, server_settings

pytestmark = pytest.mark.integration

FOLDER = {
    "answered": "Credenziali/Evase",
    "review": "Credenziali/Revisione",
    "automated": "Credenziali/Scartate",
    "untouched": "INBOX",
}


def _locations(dovecot: Dovecot) -> dict[str, tuple[str, tuple[bytes, ...]]]:
    """Message-ID -> (folder, flags) for every message in the mailbox."""
    where = {}
    for folder in FOLDER.values():
        for data in dovecot.folder_messages(folder).values():
            mid = parse_message(data[b"BODY[]"]).message_id
            assert mid is not None
            where[mid] = (folder, data[b"FLAGS"])
    return where


def _append_samples(dovecot: Dovecot, samples: tuple[Sample, ...] = SAMPLES) -> dict[str, str]:
    ids = {}
    for sample in samples:
        raw = sample.to_bytes()
        ids[sample.name] = parse_message(raw).message_id or ""
        dovecot.append(raw)
    return ids


def test_every_case_lands_where_it_should(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    ids = _append_samples(dovecot)

    result = run_once(app)

    where = _locations(dovecot)
    for sample in SAMPLES:
        folder, flags = where[ids[sample.name]]
        assert folder == FOLDER[sample.expected], sample.name
        assert b"\\Seen" not in flags, sample.name
    replies = {str(msg["In-Reply-To"]).strip(): msg for msg in smtp.handler.parsed()}
    for sample in SAMPLES:
        reply = replies.get(ids[sample.name])
        if sample.reply is None:
            assert reply is None, sample.name
            continue
        assert reply is not None, sample.name
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["X-Auto-Response-Suppress"] == "All"
        assert str(reply["Message-ID"]).endswith("@istitutostanga.edu.it>")
    assert result["sent"] == sum(1 for s in SAMPLES if s.reply)
    pending = {item.message_id: set(item.reasons) for item in app.review.pending()}
    for sample in SAMPLES:
        if sample.expected == "review":
            assert set(sample.reasons) <= pending[ids[sample.name]], sample.name


def test_links_go_only_to_addresses_on_file(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    _append_samples(dovecot)
    run_once(app)

    recipients = {rcpt for _from, rcpts, _raw in smtp.handler.messages for rcpt in rcpts}
    on_file = {
        "mario.rossi@example.org",
        "G.Esposito@Example.org".lower(),
        "famiglia.bianchi@example.org",
        "sara.verdi@studenti.example.org",
        "davide.neri@example.org",
        "franco.gallo@example.org",
    }
    assert {r.lower() for r in recipients} <= on_file
    assert not any("evil.example" in r for r in recipients)
    for _from, rcpts, raw in smtp.handler.messages:
        assert len(rcpts) == 1
        assert b"evil.example" not in raw


def test_student_link_carries_the_student_code_and_a_working_token(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    student_request = next(s for s in SAMPLES if s.name == "student-one-child")
    dovecot.append(student_request.to_bytes())
    run_once(app)

    (reply,) = smtp.handler.parsed()
    assert reply["To"] == "mario.rossi@example.org"
    body = reply.get_body()
    assert body is not None and "S2001" in body.get_content()
    with app.uow() as uow:
        status = check_token(uow, link_in(reply), app.clock())
    assert (status.username, status.purpose, status.valid) == ("S2001", "student_reset", True)


def test_answered_exactly_once_across_runs_and_restart(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    settings = server_settings(dovecot, smtp, db_url)
    _append_samples(dovecot)
    run_once(make_app(settings))
    first = len(smtp.handler.messages)
    run_once(make_app(settings, directory=False))  # a fresh process: new engine, new connections
    dovecot.append(next(s for s in SAMPLES if s.name == "teacher").to_bytes())
    run_once(make_app(settings, directory=False))

    assert first == sum(1 for s in SAMPLES if s.reply)
    assert len(smtp.handler.messages) == first + 1
    message_ids = [str(m["Message-ID"]) for m in smtp.handler.parsed()]
    assert len(set(message_ids)) == len(message_ids)


def test_same_message_id_twice_is_answered_once(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, sqlite_url))
    raw = next(s for s in SAMPLES if s.name == "adult-guardian").to_bytes()
    dovecot.append(raw)
    run_once(app)
    dovecot.append(raw)  # the same mail delivered again (or a recreated folder)
    run_once(app)

    assert len(smtp.handler.messages) == 1
    assert len(dovecot.folder_messages("Credenziali/Evase")) == 2


def test_first_start_leaves_the_backlog_alone(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    settings = server_settings(dovecot, smtp, sqlite_url, mailbox__process_existing="false")
    app = make_app(settings)
    old = next(s for s in SAMPLES if s.name == "adult-guardian")
    new = next(s for s in SAMPLES if s.name == "teacher")
    dovecot.append(old.to_bytes())
    run_once(app)
    dovecot.append(new.to_bytes())
    run_once(app)

    # The reply goes to the address as the directory records it, not as the sender wrote it.
    assert [str(m["To"]) for m in smtp.handler.parsed()] == ["g.esposito@example.org"]
    assert len(dovecot.folder_messages("INBOX")) == 1


def test_outbox_survives_an_smtp_outage(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> None:
    now = [datetime.now(UTC)]
    app = make_app(server_settings(dovecot, smtp, db_url), clock=lambda: now[0])
    dovecot.append(next(s for s in SAMPLES if s.name == "adult-guardian").to_bytes())
    smtp.stop()

    result = run_once(app)

    assert result["sent"] == 0 and result["retried"] == 1
    assert len(dovecot.folder_messages("Credenziali/Evase")) == 1  # decided and filed anyway
    with app.uow() as uow:
        (row,) = uow.outbox.listing(None)
    assert row.status == "pending" and row.attempts == 1 and row.last_error

    smtp.start()
    run_once(app)
    assert smtp.handler.messages == []  # not due yet: backoff
    now[0] += timedelta(hours=2)
    run_once(app)
    assert len(smtp.handler.messages) == 1
    with app.uow() as uow:
        (row,) = uow.outbox.listing(None)
        assert row.status == "sent" and row.raw is None  # the link is not kept once delivered


def test_permanent_smtp_failure_is_recorded(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, sqlite_url))
    dovecot.append(next(s for s in SAMPLES if s.name == "adult-guardian").to_bytes())
    smtp.handler.refuse_with = "550 5.1.1 mailbox unavailable"

    result = run_once(app)

    assert result["failed"] == 1
    with app.uow() as uow:
        (row,) = uow.outbox.listing("failed")
    assert row.last_error is not None and row.last_error.startswith("550")


def test_ledger_and_outbox_commit_together(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    _append_samples(dovecot)
    run_once(app)
    with app.uow() as uow:
        ledger = list(uow.session.scalars(select(LedgerRow)))
        outbox = list(uow.session.scalars(select(OutboxRow)))
        answered = [row.id for row in ledger if row.outcome == "answered"]
        assert sorted(row.ledger_id or 0 for row in outbox) == sorted(answered)
        assert all(row.moved_at is not None for row in ledger)


def test_housekeeping_purges_expired_tokens(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    from credmail.service.housekeeping import housekeeping
    from credmail.service.privacy import Retention

    now = [datetime.now(UTC)]
    app = make_app(server_settings(dovecot, smtp, db_url), clock=lambda: now[0])
    dovecot.append(next(s for s in SAMPLES if s.name == "adult-guardian").to_bytes())
    run_once(app)
    link = link_in(smtp.handler.parsed()[0])
    housekeeping(app.uow, app.clock, Retention())
    with app.uow() as uow:
        assert check_token(uow, link, now[0]).found
    now[0] += timedelta(days=1, hours=2)
    housekeeping(app.uow, app.clock, Retention())
    with app.uow() as uow:
        assert not check_token(uow, link, now[0]).found
