"""`privacy show` tells a revoked link from a valid one (issue 10.18)."""

from __future__ import annotations

import pytest

from credmail.entrypoints.daemon import run_once
from credmail.service.privacy import show
from tests.integration.test_security import Clock
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration

TEACHER = "g.esposito@example.org"


def test_a_revoked_link_is_shown_as_revoked(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, db_url), clock=clock)
    for _ in range(2):  # the second link, after the account's window, revokes the first
        dovecot.append(request(TEACHER))
        run_once(app)
        clock.advance(minutes=16)
    assert len(smtp.handler.messages) == 2
    with app.uow() as uow:
        tokens = show(uow, TEACHER, clock())["link_tokens"]
    states = sorted((t["revoked"], t["used"], t["expired"]) for t in tokens)
    assert states == [(False, False, False), (True, False, False)]
