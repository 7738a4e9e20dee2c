"""A request that breaks something goes to Errori and to review; the rest flow on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from credmail.core.values import Person
from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES
from credmail.service.links import IssuedLink
from credmail.service.ports import UnitOfWork
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration


def sample(name: str) -> bytes:
    return next(s for s in SAMPLES if s.name == name).to_bytes()


class ExplodingIssuer:
    """Fault injection: the link service fails for one account."""

    def __init__(self, inner: object, victim: str) -> None:
        self.inner, self.victim = inner, victim

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
            raise RuntimeError("register unavailable")
        issued: IssuedLink = self.inner.issue(  # type: ignore[attr-defined]
            uow, person, purpose, address, now, **options
        )
        return issued

    def mint(
        self, uow: UnitOfWork, selector: str, now: datetime, purpose: str | None = None
    ) -> IssuedLink | None:
        return self.inner.mint(uow, selector, now, purpose)  # type: ignore[attr-defined, no-any-return]


def test_failing_step_quarantines_only_that_message(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    mailer = app.pipeline.processor.mailer
    mailer.links = ExplodingIssuer(mailer.links, victim="G1001")
    dovecot.append(sample("adult-guardian"))  # G1001: fails
    dovecot.append(sample("teacher"))  # flows on

    result = run_once(app)

    assert result["handled"] == {"errors": 1, "answered": 1}
    assert len(dovecot.folder_messages("Credenziali/Errori")) == 1
    assert len(dovecot.folder_messages("Credenziali/Evase")) == 1
    assert [m["To"] for m in smtp.handler.parsed()] == ["g.esposito@example.org"]
    (item,) = app.review.pending()
    assert item.reasons == ("processing_error",)
    assert item.sender is None  # the quarantine path parses nothing (issue 8.2)
    assert item.raw and b"Richiesta credenziali" in item.raw
    with app.uow() as uow:
        assert uow.tokens.purge_expired(datetime.now(UTC).replace(year=2100)) == 1  # no orphan


def test_oversize_request_is_not_downloaded(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, sqlite_url, mailbox__max_message_bytes="2048"))
    big = sample("adult-guardian").replace(b"Buongiorno", b"Buongiorno " + b"x" * 4000)
    dovecot.append(big)
    dovecot.append(sample("teacher"))

    result = run_once(app)

    assert result["handled"] == {"errors": 1, "answered": 1}
    (item,) = app.review.pending()
    assert item.reasons == ("oversize",)
    assert item.raw is not None and b"x" * 100 not in item.raw  # only the header was fetched


def test_unparseable_junk_with_a_request_subject(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, sqlite_url))
    junk = (
        b"From: <<<>>>@@\r\nSubject: richiesta credenziali\r\n"
        b'Content-Type: multipart/mixed; boundary="nope"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n%%%not base64%%%\r\n"
    )
    dovecot.append(junk)
    result = run_once(app)
    assert result["handled"] == {"review": 1}
    (item,) = app.review.pending()
    assert "malformed_from" in item.reasons
    assert smtp.handler.messages == []
