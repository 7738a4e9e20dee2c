"""What bootstrap wires for the daemon: the outbox nudge, and the IMAP login check."""

from __future__ import annotations

import pytest

from credmail.samples import SAMPLES
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings, sync_inbox


def test_a_queued_reply_nudges_the_outbox_worker(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    dovecot.append(next(s for s in SAMPLES if s.name == "teacher").to_bytes())
    assert not app.outbox_worker.wake.is_set()
    sync_inbox(app)
    assert app.outbox_worker.wake.is_set()


def test_a_refused_sign_in_is_told_apart_from_other_failures(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url, mailbox__password="wrong"))
    source = app.source_factory()
    with pytest.raises(Exception) as refused:
        source.select()
    source.close()
    assert app.is_login_failure(refused.value)
    assert not app.is_login_failure(ConnectionResetError("reset"))
