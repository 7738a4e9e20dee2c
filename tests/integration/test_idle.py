"""IDLE never misses mail that arrived while credmail was busy (the silent-IDLE hang)."""

from __future__ import annotations

import time

import pytest

from credmail.adapters.imap import ImapSource
from tests.support.servers import IMAP_PASSWORD, IMAP_USER, Dovecot

pytestmark = pytest.mark.integration

RAW = b"From: a@example.org\r\nSubject: richiesta credenziali\r\n\r\nx\r\n"


def source(dovecot: Dovecot) -> ImapSource:
    return ImapSource(
        "127.0.0.1", dovecot.port, "none", IMAP_USER, IMAP_PASSWORD, "INBOX", [], timeout=5
    )


def test_mail_delivered_before_idle_starts_is_reported(dovecot: Dovecot) -> None:
    imap = source(dovecot)
    try:
        imap.select()
        dovecot.append(RAW)  # arrives between our last command and IDLE
        time.sleep(0.7)  # past Dovecot's notification delay
        # The EXISTS comes in the same packet as IDLE's "+ idling" and would sit in
        # imaplib's buffer, invisible to a socket poll, until the next mail.
        assert imap.wait_for_mail(timeout=1.0) is True
    finally:
        imap.close()


def test_mail_delivered_while_idling_is_reported(dovecot: Dovecot) -> None:
    imap = source(dovecot)
    try:
        imap.select()
        assert imap.wait_for_mail(timeout=0.2) is False  # idling, nothing new
        dovecot.append(RAW)
        deadline = time.monotonic() + 5
        while not imap.wait_for_mail(timeout=0.5):
            assert time.monotonic() < deadline
    finally:
        imap.close()
