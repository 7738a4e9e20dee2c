"""The console's outbox page by default: every mail that is not sent, chosen by the
database (the sent history only grows: the page used to load all of it and drop it in
Python, and the soak saw `credmail web` grow with it), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from credmail.config import load_settings
from credmail.service.ports import UNSENT
from tests.support.wiring import IDENTITY, make_app

pytestmark = pytest.mark.integration

AT = "2026-09-04 08:00:00"


def test_unsent_lists_every_mail_but_the_sent_ones(db_url: str) -> None:
    env = {**IDENTITY, "CREDMAIL_DATABASE__URL": db_url, "CREDMAIL_PRIVACY__LOG_KEY": "k"}
    app = make_app(load_settings(None, environ=env), directory=False)
    with app.engine.begin() as conn:
        for number, status in enumerate(("sent", "pending", "sent", "failed", "bounced")):
            conn.execute(
                text(
                    "INSERT INTO outbox (id, message_id, template, recipient, envelope_from,"
                    " status, attempts, created_at, next_attempt_at)"
                    " VALUES (:id, :mid, 'link_adult', 'a@example.org', 'b@example.org',"
                    " :status, 0, :at, :at)"
                ),
                {"id": number + 1, "mid": f"<m{number}@x>", "status": status, "at": AT},
            )
    unsent = app.desks.outbox.listing(UNSENT)
    assert [(line.id, line.status) for line in unsent] == [
        (2, "pending"),
        (4, "failed"),
        (5, "bounced"),
    ]
    assert len(app.desks.outbox.listing(None)) == 5
