"""Poison mail never blocks the queue: each lands somewhere with its reason, the rest flow on."""

from __future__ import annotations

import pytest

from credmail.entrypoints.daemon import run_once
from credmail.samples import AUTHSERV_ID, SAMPLES
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration

AR = f"Authentication-Results: {AUTHSERV_ID}; dmarc=pass header.from=example.org\r\n".encode()
HEAD = AR + b"From: mario.rossi@example.org\r\nSubject: Richiesta credenziali\r\n"

POISON = {
    "missing_boundary": HEAD + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n"
    b"--x\r\nContent-Type: text/plain\r\n\r\nciao\r\n",
    "broken_base64": HEAD + b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!not*base64===\r\n",
    "broken_quoted_printable": HEAD + b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=C3\r\n",
    "unknown_charset": HEAD + b"Content-Type: text/plain; charset=x-klingon\r\n\r\n\xff\xfe\r\n",
    "raw_8bit_headers": AR + b"From: Nicol\xf2 <mario.rossi@example.org>\r\n"
    b"Subject: Richiesta credenziali \xe0\xe8\r\n\r\nx\r\n",
    "absurdly_long_header": HEAD.replace(
        b"Subject: Richiesta credenziali", b"Subject: Richiesta credenziali " + b"x" * 200_000
    )
    + b"X-Long: "
    + b"y" * 100_000
    + b"\r\n\r\nx\r\n",
    "nested_message_rfc822": HEAD + b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: a\r\n\r\n",
    "header_without_body": HEAD,
    "nul_bytes": HEAD + b"\r\nciao\x00\x00\r\n",
}


def test_every_poison_message_is_handled_and_the_queue_flows(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    app = make_app(
        server_settings(
            dovecot,
            smtp,
            sqlite_url,
            limits__account_links_per_15_minutes="100",
            limits__address_links_per_day="100",
            limits__sender_replies_per_day="100",
        )
    )
    for raw in POISON.values():
        dovecot.append(raw)
    good = next(s for s in SAMPLES if s.name == "teacher")
    dovecot.append(good.to_bytes())

    result = run_once(app)

    handled = result["handled"]
    assert isinstance(handled, dict) and sum(handled.values()) == len(POISON) + 1
    assert dovecot.folder_messages("INBOX") == {}
    assert "g.esposito@example.org" in [str(m["To"]) for m in smtp.handler.parsed()]


def test_oversize_by_rfc822_size_is_never_downloaded(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, sqlite_url, mailbox__max_message_bytes="4096"))
    dovecot.append(HEAD + b"\r\n" + b"z" * 10_000 + b"\r\n")
    assert run_once(app)["handled"] == {"errors": 1}
    (item,) = app.review.pending()
    assert item.reasons == ("oversize",) and item.raw is not None and b"zzzz" not in item.raw
