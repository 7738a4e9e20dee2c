"""Hostile mail (issue 8, issue 10.12): bounded, linear-time parsing and what it reports.

Every timing here is CPU time (time.process_time) of one call; the code before the fix
took from seconds to minutes on the same inputs.
"""

from __future__ import annotations

import time
from email.header import Header

import pytest

from credmail.core.parse import (
    MAX_DISPLAY_NAME,
    MAX_FIELD_BYTES,
    MAX_MIME_CONTAINERS,
    parse_message,
    quick_subject,
)
from credmail.core.values import InboundMail

HEAD = b"Subject: Richiesta credenziali\r\nMessage-ID: <h1@example.org>\r\n"


def timed(raw: bytes) -> tuple[InboundMail, float]:
    started = time.process_time()
    mail = parse_message(raw)
    return mail, time.process_time() - started


def from_line(display: str, address: str = "mario.rossi@example.org") -> bytes:
    encoded = Header(display, "utf-8").encode() if not display.isascii() else f'"{display}"'
    return f"From: {encoded} <{address}>\r\n".encode()


# -- 8.2: a long display name ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["a" * 40_000, "a" * 12_000, "x." * 6_000])
def test_long_display_name_is_parsed_in_linear_time(name: str) -> None:
    raw = f"From: {name} <mario.rossi@example.org>\r\n".encode() + HEAD + b"\r\nciao\r\n"
    mail, seconds = timed(raw)
    assert seconds < 0.5
    assert mail.from_problems  # either too long as a name or as a field: never trusted


def test_display_name_over_the_limit_is_a_reason() -> None:
    raw = from_line("a" * (MAX_DISPLAY_NAME + 1)) + HEAD + b"\r\nciao\r\n"
    mail = parse_message(raw)
    assert mail.sender == "mario.rossi@example.org"
    assert mail.from_problems == ("display_name_too_long",)


def test_over_long_field_is_dropped_and_reported() -> None:
    raw = b"X-Junk: " + b"j" * MAX_FIELD_BYTES + b"\r\n" + from_line("Mario") + HEAD + b"\r\nx\r\n"
    mail = parse_message(raw)
    assert mail.sender == "mario.rossi@example.org"
    assert mail.from_problems == ("header_too_long",)
    assert quick_subject(raw) == "Richiesta credenziali"


# -- 8.3: HTML bodies -----------------------------------------------------------------------


def test_html_full_of_unclosed_tags_is_linear() -> None:
    raw = (
        from_line("Mario")
        + HEAD
        + b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        + b"<" * 300_000
        + b"<b>Anna</b>\r\n"
    )
    mail, seconds = timed(raw)
    assert seconds < 1
    assert "<b>" not in mail.text


def test_html_tags_are_still_removed() -> None:
    raw = from_line("Mario") + HEAD + b"Content-Type: text/html\r\n\r\n<p>per <b>Anna</b></p>\r\n"
    assert parse_message(raw).text.split() == ["per", "Anna"]


# -- 8.4: header smuggling ------------------------------------------------------------------

SIGNED_PART = (
    b"From: attacker@provider.example\r\nTo: segreteria@istitutostanga.edu.it\r\n"
    b"Subject: ciao\r\nMessage-ID: <s1@provider.example>\r\n\r\nciao\r\n"
)


def test_bare_cr_smuggled_from_is_a_reason() -> None:
    smuggled = b"X-Pad: x\rFrom: victim@provider.example\rSubject: richiesta credenziali\r\r\n"
    mail = parse_message(smuggled + SIGNED_PART)
    assert mail.sender == "victim@provider.example"  # what Python's parser believes
    assert "header_smuggling" in mail.from_problems


def test_rewritten_cr_leaves_a_second_header_block_in_the_body() -> None:
    """Dovecot turns the bare CRs into line ends: the signed From ends up in the body."""
    rewritten = (
        b"X-Pad: x\r\nFrom: victim@provider.example\r\nSubject: richiesta credenziali\r\n\r\n"
        b" folded text\r\nX-Other: y\r\n\r\n"
    )
    mail = parse_message(rewritten + SIGNED_PART)
    assert mail.sender == "victim@provider.example"
    assert "header_smuggling" in mail.from_problems


def test_bare_lf_in_a_crlf_header_is_a_reason() -> None:
    raw = from_line("Mario") + b"X-Pad: x\nX-More: y\r\n" + HEAD + b"\r\nciao\r\n"
    assert "header_smuggling" in parse_message(raw).from_problems


def test_lf_only_mail_is_not_smuggling() -> None:
    raw = (from_line("Mario Rossi") + HEAD + b"\r\nBuongiorno,\r\nFrom: me\r\n").replace(
        b"\r\n", b"\n"
    )
    mail = parse_message(raw)
    assert mail.sender == "mario.rossi@example.org"
    assert mail.from_problems == ()  # "From:" after ordinary text is just text


# -- 8.12: MIME depth -----------------------------------------------------------------------


def nested(depth: int) -> bytes:
    raw = from_line("Mario") + HEAD + b"MIME-Version: 1.0\r\n"
    parts = []
    for level in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n')
    inner = "Content-Type: text/plain\r\n\r\nper Anna\r\n"
    closing = "".join(f"\r\n--b{level}--\r\n" for level in reversed(range(depth)))
    return raw + ("".join(parts) + inner + closing).encode()


def test_thousand_nested_levels_are_a_reason_not_a_crash() -> None:
    mail, seconds = timed(nested(1_000))
    assert seconds < 1
    assert mail.sender == "mario.rossi@example.org"
    assert mail.from_problems == ("mime_too_complex",)


def test_ordinary_nesting_is_read() -> None:
    mail = parse_message(nested(3))
    assert mail.from_problems == ()
    assert "Anna" in mail.text
    assert "mime_too_complex" in parse_message(nested(MAX_MIME_CONTAINERS + 1)).from_problems


# -- 10.12: display names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Jean-Pierre Ferrè", "Fabrizio Nuñez", "Zoë O'Brien", "Παπαδόπουλος", "李 Wei"]
)
def test_ordinary_foreign_names_are_fine(name: str) -> None:
    mail = parse_message(from_line(name) + HEAD + b"\r\nciao\r\n")
    assert mail.sender_display_name == name
    assert mail.from_problems == ()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("segreteria@istitutostanga.edu.it", "display_name_address"),
        ("segreteria＠istitutostanga.edu.it", "display_name_address"),
        ("segreteria (at) istitutostanga.edu.it", "display_name_address"),
        ("Mario Rossi\u202e", "display_name_control"),
        ("Mario\u200bRossi", "display_name_control"),
        ("Mario Rоssi", "display_name_mixed_script"),  # Cyrillic о
        ("𝐌𝐚𝐫𝐢𝐨 Rossi", "display_name_mixed_script"),
    ],
)
def test_deceptive_display_names_are_reasons(name: str, reason: str) -> None:
    mail = parse_message(from_line(name) + HEAD + b"\r\nciao\r\n")
    assert reason in mail.from_problems


def test_over_long_subject_is_cut_not_dropped() -> None:
    """Cut, the request still reaches the reviewer instead of staying unread in the inbox."""
    long_subject = b"Subject: Richiesta credenziali " + b"x" * 200_000 + b"\r\n"
    raw = from_line("Mario") + long_subject + b"\r\nciao\r\n"
    mail = parse_message(raw)
    assert mail.subject.startswith("Richiesta credenziali xxx")
    assert mail.from_problems == ("header_too_long",)
    assert quick_subject(raw).startswith("Richiesta credenziali xxx")


def test_every_review_reason_has_a_plain_italian_label() -> None:
    from credmail.core.decide import REVIEW_RULES
    from credmail.service.presentation import reason_label

    for code, _ in REVIEW_RULES:
        label = reason_label(code)
        assert label != code, code
        assert "encoded" not in label and "_" not in label, label


@pytest.mark.parametrize("raw", [b" \nMessage-ID:<", b":\nMessage-ID:<", b"In-Reply-To: <\n\n"])
def test_a_broken_message_id_is_no_crash(raw: bytes) -> None:
    """The stdlib's msg-id parser raises IndexError on `<` alone (found by hypothesis)."""
    mail = parse_message(raw)
    assert mail.message_id is None and mail.in_reply_to == ()
