"""A known teacher whose client quotes an encoded-word or writes raw UTF-8 in the From
display name is answered, through a real Dovecot (issue 10.16)."""

from __future__ import annotations

import pytest

from credmail.entrypoints.daemon import run_once
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration

TEACHER = b"g.esposito@example.org"


@pytest.mark.parametrize(
    "from_field",
    [
        b'"=?utf-8?q?Giovanna_Esp=C3=B2sito?=" <g.esposito@example.org>',
        '"Giovanna Espòsito" <g.esposito@example.org>'.encode(),
    ],
)
def test_an_unusually_written_name_is_answered(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, from_field: bytes
) -> None:
    app = make_app(server_settings(dovecot, smtp, sqlite_url))
    raw = request(TEACHER.decode())
    assert raw.count(b"From: " + TEACHER + b"\n") == 1
    dovecot.append(raw.replace(b"From: " + TEACHER + b"\n", b"From: " + from_field + b"\n"))
    assert run_once(app)["handled"] == {"answered": 1}
    assert [rcpts for _, rcpts, _ in smtp.handler.messages] == [["g.esposito@example.org"]]
