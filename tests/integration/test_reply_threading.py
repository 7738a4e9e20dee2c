"""A reply to a request with a long Message-ID threads under it: the bytes the real SMTP
server receives name the request's id verbatim in In-Reply-To and References (Dovecot,
aiosmtpd, SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest

from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings
from tests.unit.test_thread_headers import ENCODED_WORD, GMAIL_ID, OUTLOOK_ID, field_lines

pytestmark = pytest.mark.integration

_MESSAGE_ID = re.compile(rb"^Message-ID:.*\n(?:[ \t].*\n)*", re.M)  # with its continuations


def test_replies_name_long_provider_ids_verbatim(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    requests = {"adult-guardian": OUTLOOK_ID, "teacher": GMAIL_ID}
    for sample in SAMPLES:
        if sample.name in requests:
            line = f"Message-ID: {requests[sample.name]}\n"
            dovecot.append(_MESSAGE_ID.sub(line.encode(), sample.to_bytes(), count=1))

    run_once(app)

    received = [content for _from, _rcpts, content in smtp.handler.messages]
    assert len(received) == len(requests)
    threaded = set()
    for content in received:
        head = content.split(b"\r\n\r\n", 1)[0]
        assert not ENCODED_WORD.search(head.split(b"\r\nSubject:")[0])
        (in_reply_to,) = field_lines(content, b"In-Reply-To")
        wanted = in_reply_to.removeprefix(b"In-Reply-To: ")
        assert field_lines(content, b"References") == [b"References: " + wanted]
        msg = message_from_bytes(content, policy=policy.default)
        assert str(msg["In-Reply-To"]) == str(msg["References"]) == wanted.decode()
        threaded.add(wanted.decode())
    assert threaded == set(requests.values())
