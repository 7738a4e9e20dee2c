"""Transport security and server capabilities: TLS, STARTTLS, AUTH, MOVE fallback."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration


def request() -> bytes:
    return next(s for s in SAMPLES if s.name == "adult-guardian").to_bytes()


@pytest.fixture
def tls_smtp(dovecot: Dovecot) -> Iterator[SmtpServer]:
    server = SmtpServer(certificate=dovecot.ca_file).start()
    yield server
    server.stop()


def test_imap_tls_and_smtp_starttls_with_auth(
    dovecot: Dovecot, tls_smtp: SmtpServer, sqlite_url: str
) -> None:
    user, password = tls_smtp.credentials
    settings = server_settings(
        dovecot,
        tls_smtp,
        sqlite_url,
        mailbox__security="tls",
        mailbox__port=str(dovecot.tls_port),
        mailbox__ca_file=str(dovecot.ca_file),
        smtp__security="starttls",
        smtp__ca_file=str(dovecot.ca_file),
        smtp__username=user,
        smtp__password=password,
    )
    dovecot.append(request())
    result = run_once(make_app(settings))
    assert result["sent"] == 1
    assert len(tls_smtp.handler.messages) == 1


def test_imap_starttls(dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str) -> None:
    settings = server_settings(
        dovecot,
        smtp,
        sqlite_url,
        mailbox__security="starttls",
        mailbox__ca_file=str(dovecot.ca_file),
    )
    dovecot.append(request())
    assert run_once(make_app(settings))["sent"] == 1


def test_unknown_imap_certificate_is_refused(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    settings = server_settings(
        dovecot, smtp, sqlite_url, mailbox__security="tls", mailbox__port=str(dovecot.tls_port)
    )
    dovecot.append(request())
    with pytest.raises(ssl.SSLCertVerificationError):
        run_once(make_app(settings))
    assert smtp.handler.messages == []


def test_unknown_smtp_certificate_keeps_mail_queued(
    dovecot: Dovecot, tls_smtp: SmtpServer, sqlite_url: str
) -> None:
    user, password = tls_smtp.credentials
    settings = server_settings(
        dovecot,
        tls_smtp,
        sqlite_url,
        smtp__security="starttls",
        smtp__username=user,
        smtp__password=password,
    )
    dovecot.append(request())
    result = run_once(make_app(settings))
    assert (result["sent"], result["retried"]) == (0, 1)
    assert tls_smtp.handler.messages == []


def test_wrong_smtp_password_keeps_mail_queued(
    dovecot: Dovecot, tls_smtp: SmtpServer, sqlite_url: str
) -> None:
    settings = server_settings(
        dovecot,
        tls_smtp,
        sqlite_url,
        smtp__security="starttls",
        smtp__ca_file=str(dovecot.ca_file),
        smtp__username="smtp-user",
        smtp__password="wrong-password",
        smtp__timeout_seconds="3",
    )  # aiosmtpd stalls after a bad login
    dovecot.append(request())
    result = run_once(make_app(settings))
    assert (result["sent"], result["retried"]) == (0, 1)


def test_copy_and_delete_without_move_spares_the_staffs_deletions(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = IMAPClient.has_capability
    monkeypatch.setattr(
        IMAPClient, "has_capability", lambda self, cap: cap != "MOVE" and original(self, cap)
    )
    dovecot.append(b"From: a@example.org\r\nSubject: da cancellare\r\n\r\nx\r\n")
    with dovecot.client() as client:  # a person marks a message deleted, not yet expunged
        client.select_folder("INBOX")
        client.add_flags(client.search(["ALL"]), [b"\\Deleted"])
    dovecot.append(request())

    run_once(make_app(server_settings(dovecot, smtp, sqlite_url)))

    inbox = dovecot.folder_messages("INBOX")
    assert [b"\\Deleted" in data[b"FLAGS"] for data in inbox.values()] == [True]
    assert len(dovecot.folder_messages("Credenziali/Evase")) == 1
    assert len(smtp.handler.messages) == 1
