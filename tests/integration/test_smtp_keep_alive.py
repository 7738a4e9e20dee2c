"""The daemon's outbox keeps its SMTP connection open between drains (issue 17.3/17.4).

Real aiosmtpd, Dovecot and databases; drains run on one event loop, as in the outbox
worker. A reply that comes within `smtp.keep_alive_seconds` reuses the connection (no new
EHLO); a connection the server closed meanwhile is replaced without counting against the
mail; a drain not asked to keep it open says QUIT; keep_alive_seconds = 0 connects every time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from credmail.bootstrap import App
from tests.support.requests import request
from tests.support.servers import Dovecot, RecordingHandler, SmtpServer
from tests.support.wiring import make_app, server_settings, sync_inbox

pytestmark = pytest.mark.integration

ON_FILE = ("mario.rossi@example.org", "g.esposito@example.org")  # in make_app's directory


class CountingHandler(RecordingHandler):
    """Also counts the connections (EHLO) and the QUITs the server saw."""

    def __init__(self) -> None:
        super().__init__()
        self.ehlos = 0
        self.quits = 0
        self.mail_options: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mail_options.append(list(envelope.mail_options))
        return await super().handle_DATA(server, session, envelope)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"


@pytest.fixture
def counting_smtp() -> Any:
    server = SmtpServer(handler=CountingHandler(), options={"timeout": 1.0}).start()
    yield server
    server.stop()


def queue_reply(app: App, dovecot: Dovecot, sender: str) -> None:
    dovecot.append(request(sender))
    sync_inbox(app)


def keeping_app(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> App:
    return make_app(server_settings(dovecot, smtp, db_url, smtp__keep_alive_seconds="60"))


def test_replies_within_the_keep_alive_share_one_connection(
    dovecot: Dovecot, counting_smtp: SmtpServer, db_url: str
) -> None:
    handler: CountingHandler = counting_smtp.handler  # type: ignore[assignment]
    app = keeping_app(dovecot, counting_smtp, db_url)
    with asyncio.Runner() as loop:
        for sender in ON_FILE:
            queue_reply(app, dovecot, sender)
            assert loop.run(app.delivery.drain(keep_open=True)).sent == 1
        assert handler.ehlos == 1 and handler.quits == 0  # kept open, used twice
        loop.run(app.delivery.close())
    assert handler.quits == 1
    assert len(handler.messages) == 2


def test_a_connection_the_server_closed_is_replaced_not_blamed_on_the_mail(
    dovecot: Dovecot, counting_smtp: SmtpServer, db_url: str
) -> None:
    handler: CountingHandler = counting_smtp.handler  # type: ignore[assignment]
    app = keeping_app(dovecot, counting_smtp, db_url)
    with asyncio.Runner() as loop:
        queue_reply(app, dovecot, ON_FILE[0])
        assert loop.run(app.delivery.drain(keep_open=True)).sent == 1
        time.sleep(1.5)  # the server's idle timeout (1 s) closes the kept connection
        queue_reply(app, dovecot, ON_FILE[1])
        stats = loop.run(app.delivery.drain(keep_open=True))
        loop.run(app.delivery.close())
    assert (stats.sent, stats.retried, stats.failed) == (1, 0, 0)
    assert handler.ehlos == 2 and len(handler.messages) == 2


def test_a_one_shot_drain_quits_and_zero_keeps_nothing(
    dovecot: Dovecot, counting_smtp: SmtpServer, db_url: str
) -> None:
    handler: CountingHandler = counting_smtp.handler  # type: ignore[assignment]
    kept = make_app(server_settings(dovecot, counting_smtp, db_url))  # the default: 60 s
    queue_reply(kept, dovecot, ON_FILE[0])
    assert asyncio.run(kept.delivery.drain()).sent == 1
    assert (handler.ehlos, handler.quits) == (1, 1)
    never = make_app(server_settings(dovecot, counting_smtp, db_url, smtp__keep_alive_seconds="0"))
    with asyncio.Runner() as loop:
        queue_reply(never, dovecot, ON_FILE[1])
        loop.run(never.delivery.drain(keep_open=True))
        assert (handler.ehlos, handler.quits) == (2, 2)


def test_an_8bit_reply_is_declared_to_a_server_that_takes_8bitmime(
    dovecot: Dovecot, counting_smtp: SmtpServer, db_url: str
) -> None:
    """Replies are stored as 8bit text (long link lines); aiosmtpd offers 8BITMIME."""
    handler: CountingHandler = counting_smtp.handler  # type: ignore[assignment]
    app = make_app(server_settings(dovecot, counting_smtp, db_url))
    queue_reply(app, dovecot, ON_FILE[0])
    assert asyncio.run(app.delivery.drain()).sent == 1
    (_from, _to, content) = handler.messages[0]
    assert b"Content-Transfer-Encoding: 8bit" in content and not content.isascii()
    assert handler.mail_options == [["BODY=8BITMIME"]]
