"""A folder deleted and recreated with the same messages (new UIDVALIDITY): no second reply."""

from __future__ import annotations

import pytest

from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration

FOLDER = "Richieste"


def test_recreated_folder_is_not_answered_again(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    settings = server_settings(dovecot, smtp, db_url, mailbox__folder=FOLDER)
    app = make_app(settings)
    raws = [s.to_bytes() for s in SAMPLES]
    with dovecot.client() as client:
        client.create_folder(FOLDER)
        first_validity = client.select_folder(FOLDER)[b"UIDVALIDITY"]
        for raw in raws:
            client.append(FOLDER, raw)
    run_once(app)
    answered = len(smtp.handler.messages)
    assert answered == sum(1 for s in SAMPLES if s.reply)

    with dovecot.client() as client:  # someone rebuilds the folder from a backup
        client.delete_folder(FOLDER)
        client.create_folder(FOLDER)
        assert client.select_folder(FOLDER)[b"UIDVALIDITY"] != first_validity
        for raw in raws:
            client.append(FOLDER, raw)
    run_once(make_app(settings, directory=False))

    assert len(smtp.handler.messages) == answered
    left = dovecot.folder_messages(FOLDER)
    assert len(left) == sum(1 for s in SAMPLES if s.expected == "untouched")
    assert len(dovecot.folder_messages("Credenziali/Evase")) == 2 * answered  # filed again
