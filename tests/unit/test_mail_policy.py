"""The email policy that parses each header once: same answers as the stock policy."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from credmail.core.mail_policy import MAX_CACHED_VALUE, POLICY

RAW = (
    b"From: =?utf-8?q?Jos=C3=A9?= <jose@example.org>\r\n"
    b"To: segreteria@istitutostanga.edu.it\r\n"
    b"Subject: richiesta credenziali\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"\r\n"
    b"Buongiorno\r\n"
)


def parse(raw: bytes, policy: email.policy.Policy = POLICY) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy)
    assert isinstance(msg, EmailMessage)
    return msg


def test_a_header_read_twice_is_parsed_once_and_shared_between_messages() -> None:
    first, second = parse(RAW), parse(RAW)
    assert first["Content-Type"] is first["Content-Type"]
    assert first["From"] is second["From"]


@pytest.mark.parametrize("name", ["From", "To", "Subject", "Content-Type"])
def test_the_cached_header_reads_as_the_stock_policy_reads_it(name: str) -> None:
    ours, stock = parse(RAW)[name], parse(RAW, email.policy.default)[name]
    assert str(ours) == str(stock)
    assert type(ours).__mro__[1:] == type(stock).__mro__[1:]
    assert [str(d) for d in ours.defects] == [str(d) for d in stock.defects]
    assert parse(RAW).get_content_type() == "text/plain"
    assert parse(RAW)["From"].addresses[0].display_name == "José"


def test_defects_stay_with_their_own_header() -> None:
    broken = RAW.replace(b"<jose@example.org>", b"<jose@example.org")
    assert parse(broken)["From"].defects
    assert not parse(RAW)["From"].defects


def test_each_message_keeps_its_own_spelling_of_a_field_name() -> None:
    assert parse(RAW)["From"].name == "From"
    assert parse(RAW.replace(b"From:", b"FROM:"))["From"].name == "FROM"
    assert parse(RAW)["From"].name == "From"


def test_a_long_value_is_parsed_at_every_read() -> None:
    raw = RAW.replace(b"richiesta credenziali", b"x" * (MAX_CACHED_VALUE + 1))
    msg = parse(raw)
    assert msg["Subject"] is not msg["Subject"]
    assert str(msg["Subject"]) == "x" * (MAX_CACHED_VALUE + 1)


def test_a_line_break_in_a_set_value_is_still_refused() -> None:
    msg = EmailMessage(policy=POLICY)
    with pytest.raises(ValueError):
        msg["Subject"] = "richiesta\r\nBcc: someone@example.org"
