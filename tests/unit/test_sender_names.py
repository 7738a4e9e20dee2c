"""Display names as some clients write them: a quoted encoded-word, or raw UTF-8 (RFC 6532).
The name is judged decoded; anything unusual outside the name is still `malformed_from`
(issue 10.16)."""

from __future__ import annotations

import pytest

from credmail.core.parse import parse_message


def sender(from_field: bytes) -> tuple[str | None, str, tuple[str, ...]]:
    raw = b"From: " + from_field + b"\r\nSubject: richiesta credenziali\r\n\r\nciao\r\n"
    mail = parse_message(raw)
    return mail.sender, mail.sender_display_name, mail.from_problems


@pytest.mark.parametrize(
    "from_field",
    [
        b'"=?utf-8?q?Elena_Verd=C3=AC?=" <elena@example.org>',
        b'"=?UTF-8?B?RWxlbmEgVmVyZMOs?=" <elena@example.org>',
        "Elena Verdì <elena@example.org>".encode(),
        '"Elena Verdì" <elena@example.org>'.encode(),
    ],
)
def test_the_name_is_decoded_and_accepted(from_field: bytes) -> None:
    assert sender(from_field) == ("elena@example.org", "Elena Verdì", ())


@pytest.mark.parametrize(
    ("from_field", "problem"),
    [
        (b'"=?utf-8?q?m=40example.org?=" <elena@example.org>', "display_name_address"),
        ('"Εlena Verdì" <elena@example.org>'.encode(), "display_name_mixed_script"),  # Greek Ε
        (b'"=?utf-8?q?Elena=E2=80=AE?=" <elena@example.org>', "display_name_control"),
    ],
)
def test_the_decoded_name_is_still_judged(from_field: bytes, problem: str) -> None:
    _, _, problems = sender(from_field)
    assert problem in problems and "malformed_from" not in problems


@pytest.mark.parametrize(
    "from_field",
    [
        "Elena Verdì <elena@example.org>".encode("latin-1"),  # 8-bit, but not UTF-8
        '"Elena" <elenà@example.org>'.encode(),  # 8-bit in the address
        b'"=?utf-8?q?Elena?=" (nota) <elena@example.org>',  # a comment
        b'"=?utf-8?q?Elena?=" <elena@example.org>, altro@example.org',
        b'"=?utf-8?q?Elena?=" <elena@example.org> <altro@example.org>',
        b'"=?utf-8?q?Elena?=" elena@example.org',
    ],
)
def test_anything_else_unusual_stays_malformed(from_field: bytes) -> None:
    assert "malformed_from" in sender(from_field)[2]
