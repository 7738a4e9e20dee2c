"""Threading fields reach the wire as written: a msg-id is never an encoded-word (RFC 5322
3.6.4, RFC 2047 section 5), a long id stays whole on its line, a References chain folds
only between ids. Checked on the raw bytes, with ids as long as real providers write."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from credmail.core.mail_policy import POLICY
from credmail.service.outbox.queue import fill_link
from credmail.service.reply_templates import MAX_LINE_BYTES, ReplyComposer, threading_id
from credmail.service.template_check import SAMPLE_VALUES

# Microsoft 365 (Exchange Online) and Gmail Message-IDs, at their usual lengths.
OUTLOOK_ID = (
    "<AM0PR01MB12345678ABCDEF1234567890ABCDEF12345678@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>"
)
GMAIL_ID = "<CAJ8kP3x+8mEsnqZpVv5kLrQ2WnY8bTq1xYjA5u_UzTk2Q7=Hfw9K4dL0aB@mail.gmail.com>"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
COMMON = {"school_name": "Istituto Stanga", "signature": "La Segreteria", "contact": "Scriva."}
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?")


def test_the_ids_have_real_providers_lengths() -> None:
    assert 90 <= len(OUTLOOK_ID) <= 100 and 70 <= len(GMAIL_ID) <= 80


def field_lines(raw: bytes, name: bytes) -> list[bytes]:
    """The physical lines of one header field (its first line and continuations)."""
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    start = next(i for i, line in enumerate(lines) if line.lower().startswith(name.lower() + b":"))
    found = [lines[start]]
    for line in lines[start + 1 :]:
        if not line[:1].isspace():
            break
        found.append(line)
    return found


def parsed(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def reply(in_reply_to: str | None, note: str = "", template: str = "link_adult") -> bytes:
    composer = ReplyComposer("segreteria@istitutostanga.edu.it", "Segreteria", COMMON)
    context = {**SAMPLE_VALUES, "note": note}
    return composer.compose(template, "mario.rossi@example.org", context, in_reply_to, NOW).raw


@pytest.mark.parametrize("message_id", [OUTLOOK_ID, GMAIL_ID])
def test_a_reply_names_the_request_verbatim_in_in_reply_to_and_references(
    message_id: str,
) -> None:
    raw = reply(message_id)
    for name in (b"In-Reply-To", b"References"):
        assert field_lines(raw, name) == [name + b": " + message_id.encode()]
    assert not ENCODED_WORD.search(raw.split(b"\n\n", 1)[0].split(b"Subject:")[0])
    msg = parsed(raw)
    assert str(msg["In-Reply-To"]) == str(msg["References"]) == message_id


def test_every_field_of_a_reply_but_the_subject_and_names_is_free_of_encoded_words() -> None:
    raw = reply(OUTLOOK_ID)
    head = raw.split(b"\n\n", 1)[0]
    for line in head.split(b"\n"):
        if not line.startswith((b"Subject:", b"From:", b" ")):
            assert not ENCODED_WORD.search(line), line


def test_the_message_id_of_a_long_domain_stays_whole() -> None:
    domain = "segreteria-didattica.istituto-comprensivo-statale-di-esempio.edu.it"
    composer = ReplyComposer(f"segreteria@{domain}", "Segreteria", COMMON)
    mail = composer.compose("acknowledge_unknown", "x@example.org", {}, None, NOW)
    assert len(mail.message_id) > 78
    assert field_lines(mail.raw, b"Message-ID") == [b"Message-ID: " + mail.message_id.encode()]
    assert str(parsed(mail.raw)["Message-ID"]) == mail.message_id


def test_a_references_chain_folds_only_between_ids() -> None:
    chain = [GMAIL_ID, OUTLOOK_ID, GMAIL_ID.replace("CAJ8", "CAK9"), OUTLOOK_ID.replace("01", "02")]
    msg = EmailMessage(policy=POLICY)
    msg["References"] = " ".join(chain)
    msg["In-Reply-To"] = chain[-1]
    msg.set_content("x")
    raw = msg.as_bytes()
    lines = field_lines(raw, b"References")
    assert b" ".join(line.strip() for line in lines) == b"References: " + " ".join(chain).encode()
    assert all(len(line) <= MAX_LINE_BYTES for line in lines)
    for line in lines[1:]:  # each continuation holds whole ids
        assert re.fullmatch(rb" (<[!-;=?-~]+>)( <[!-;=?-~]+>)*", line), line
    assert len(lines) > 1 and not ENCODED_WORD.search(raw)
    assert str(parsed(raw)["References"]).split() == chain


def test_short_ids_share_a_line_up_to_78_characters() -> None:
    ids = [f"<{n}@example.org>" for n in range(12)]
    msg = EmailMessage(policy=POLICY)
    msg["References"] = " ".join(ids)
    lines = field_lines(msg.as_bytes(), b"References")
    assert len(lines) > 1 and all(len(line) <= 78 for line in lines)


def test_a_list_field_is_written_as_it_is() -> None:
    long_list = "<" + "a" * 90 + ".lists.example.org>"
    msg = EmailMessage(policy=POLICY)
    msg["List-Id"] = f"Segreteria {long_list}"
    lines = field_lines(msg.as_bytes(), b"List-Id")
    assert lines == [b"List-Id: Segreteria", b" " + long_list.encode()]


def test_the_slow_fill_path_keeps_the_ids_verbatim() -> None:
    """A body line over 998 bytes is stored quoted-printable; filling the link then parses
    and writes the whole mail again, headers included."""
    raw = reply(OUTLOOK_ID, note="x" * 1200, template="review_rejected")
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    filled = fill_link(raw, "https://r.example.org/x", "domani")
    for name in (b"In-Reply-To", b"References"):
        assert field_lines(filled, name) == [name + b": " + OUTLOOK_ID.encode()]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (OUTLOOK_ID, True),
        ("<" + "a" * 900 + "@example.org>", True),
        ("<" + "a" * 990 + "@example.org>", False),  # would not fit a line
        ("<più@example.org>", False),  # 8-bit: not a msg-id
        ("<a b@example.org>", False),
        ("a@example.org", False),
        ("", False),
        (None, False),
    ],
)
def test_only_a_msg_id_that_fits_a_line_is_threaded(given: str | None, kept: bool) -> None:
    assert threading_id(given) == (given if kept else None)
    raw = reply(given)
    assert (b"In-Reply-To:" in raw) is kept
    assert max(map(len, raw.split(b"\n"))) <= MAX_LINE_BYTES


def test_addresses_with_an_internationalized_domain_are_written_in_a_labels() -> None:
    composer = ReplyComposer("segreteria@scuola-straße.it", "Segreteria", COMMON)
    mail = composer.compose("acknowledge_unknown", "Anna@Straße.de", {}, GMAIL_ID, NOW)
    head = mail.raw.split(b"\n\n", 1)[0]
    assert not ENCODED_WORD.search(head.split(b"Subject:")[0])
    assert field_lines(mail.raw, b"To") == [b"To: Anna@xn--strae-oqa.de"]
    assert field_lines(mail.raw, b"From") == [
        b"From: Segreteria <segreteria@xn--scuola-strae-v9a.it>"
    ]
    assert mail.message_id.endswith("@xn--scuola-strae-v9a.it>")
    assert mail.envelope_from == "segreteria@xn--scuola-strae-v9a.it"
