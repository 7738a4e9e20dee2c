"""A hostile mail in front of a genuine request, in the real Dovecot inbox, with the real
daemon: the request is still answered within the reconciliation interval (issue 8)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from credmail.samples import AUTHSERV_ID, SAMPLES
from tests.support.daemon import Daemon, wait_for
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e

POLL_SECONDS = 5
AR = f"Authentication-Results: {AUTHSERV_ID}; dmarc=pass header.from=example.org\r\n".encode()
LONG_NAME = AR + b"From: " + b"a" * 120_000 + b" <mario.rossi@example.org>\r\n"
HOSTILE = {
    "long_display_name": LONG_NAME + b"Subject: Richiesta credenziali\r\n\r\nciao\r\n",
    "smuggled_from": AR
    + b"X-Pad: x\rFrom: mario.rossi@example.org\rSubject: Richiesta credenziali\r\r\n"
    + b"From: attacker@example.org\r\nSubject: ciao\r\n\r\nciao\r\n",
}


def test_hostile_mail_does_not_hold_up_the_genuine_request(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    settings = server_env(
        dovecot, smtp, sqlite_url, mailbox__poll_interval_seconds=str(POLL_SECONDS)
    )
    daemon = Daemon(tmp_path, settings)
    daemon.import_directory()
    daemon.start()
    try:
        assert wait_for(lambda: bool(daemon.events("imap.connected")), 30), daemon.text()
        time.sleep(0.5)  # let it enter IDLE
        for raw in HOSTILE.values():
            dovecot.append(raw)
        genuine = next(s for s in SAMPLES if s.name == "teacher").to_bytes()
        dovecot.append(genuine)
        appended = time.monotonic()
        assert wait_for(lambda: len(smtp.handler.messages) == 1, POLL_SECONDS), daemon.text()
        assert time.monotonic() - appended <= POLL_SECONDS
        assert wait_for(lambda: len(daemon.events("message.handled")) == 3, 10), daemon.text()
        assert wait_for(lambda: dovecot.folder_messages("INBOX") == {}, 10)  # all moved
    finally:
        daemon.kill()

    (reply,) = smtp.handler.parsed()
    assert reply["To"] == "g.esposito@example.org"
    handled = daemon.events("message.handled")
    held = sorted(event["reasons"] for event in handled if event["outcome"] == "review")
    assert held == [
        ["header_smuggling"],
        ["missing_from", "header_too_long", "unauthenticated_sender"],
    ]
