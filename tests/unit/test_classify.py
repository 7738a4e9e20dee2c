"""Subject classification: phrases, prefixes, quotes, decoding."""

from __future__ import annotations

import pytest

from credmail.core.classify import SubjectRules, classify_subject, default_rules
from credmail.core.parse import parse_message
from credmail.core.values import RequestKind

RULES = default_rules()


@pytest.mark.parametrize(
    ("subject", "kind", "reply_prefix", "rest"),
    [
        ("richiesta credenziali", RequestKind.ADULT, False, ""),
        ("Richiesta Credenziali", RequestKind.ADULT, False, ""),
        ("  RICHIESTA   CREDENZIALI  ", RequestKind.ADULT, False, ""),
        ("“richiesta credenziali”", RequestKind.ADULT, False, ""),
        ("«richiesta credenziali studente»", RequestKind.STUDENT, False, ""),
        ("'richiesta credenziali studente'", RequestKind.STUDENT, False, ""),
        ("richiesta credenziali studente", RequestKind.STUDENT, False, ""),
        (
            "Richiesta credenziali studente - Rossi Luca 2B",
            RequestKind.STUDENT,
            False,
            "rossi luca 2b",
        ),
        ("richiesta credenziali per Mario Rossi", RequestKind.ADULT, False, "per mario rossi"),
        ("Re: richiesta credenziali", RequestKind.ADULT, True, ""),
        ("R: richiesta credenziali studente", RequestKind.STUDENT, True, ""),
        ("RE: Fwd: I: richiesta credenziali", RequestKind.ADULT, True, ""),
        ("Risposta: richiesta credenziali", RequestKind.ADULT, True, ""),
        ("Inoltro: richiesta credenziali studente", RequestKind.STUDENT, True, ""),
        ("AW: WG: richiesta credenziali", RequestKind.ADULT, True, ""),
        ("fw:richiesta credenziali", RequestKind.ADULT, True, ""),
        ("ｒｉｃｈｉｅｓｔａ ｃｒｅｄｅｎｚｉａｌｉ", RequestKind.ADULT, False, ""),  # NFKC
    ],
)
def test_requests(subject: str, kind: RequestKind, reply_prefix: bool, rest: str) -> None:
    result = classify_subject(subject, RULES)
    assert result.is_request
    assert (result.kind, result.reply_prefix, result.rest) == (kind, reply_prefix, rest)


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "orari di ricevimento",
        "richiesta credenzialità",
        "richiesta",
        "credenziali",
        "la mia richiesta credenziali",
        "richiestacredenziali",
        "Re: orari",
    ],
)
def test_not_requests(subject: str) -> None:
    assert not classify_subject(subject, RULES).is_request


@pytest.mark.parametrize(
    "subject",
    [
        "richiesta credenziali studente",
        "Richiesta credenziali studente Luca",
        "Re: richiesta credenziali studente",
        "=?utf-8?q?richiesta_credenziali_studente?=",
    ],
)
def test_student_phrase_never_lands_in_adult_class(subject: str) -> None:
    raw = f"From: a@example.org\r\nSubject: {subject}\r\n\r\nx\r\n".encode()
    assert classify_subject(parse_message(raw).subject, RULES).kind is RequestKind.STUDENT


def test_longest_phrase_wins_whatever_the_configured_order() -> None:
    rules = SubjectRules.build(["richiesta credenziali studente"], ["richiesta credenziali"], [])
    assert next(r.phrase for r in rules.rules) == "richiesta credenziali studente"


def test_phrases_are_configuration() -> None:
    rules = SubjectRules.build(["credenziali alunno"], ["password registro"], ["antw"])
    assert classify_subject("Password registro", rules).kind is RequestKind.ADULT
    assert classify_subject("credenziali alunno", rules).kind is RequestKind.STUDENT
    assert classify_subject("Antw: password registro", rules).reply_prefix
    assert not classify_subject("richiesta credenziali", rules).is_request


def test_encoded_word_subject_is_decoded_before_matching() -> None:
    raw = (
        b"From: a@example.org\r\n"
        b"Subject: =?UTF-8?B?UmljaGllc3RhIGNyZWRlbnppYWxpIHN0dWRlbnRl?=\r\n\r\nx\r\n"
    )
    mail = parse_message(raw)
    assert classify_subject(mail.subject, RULES).kind is RequestKind.STUDENT


def test_encoded_word_split_over_two_words() -> None:
    raw = (
        b"From: a@example.org\r\n"
        b"Subject: =?ISO-8859-1?Q?Richiesta_credenziali?=\r\n =?UTF-8?Q?_studente?=\r\n\r\nx\r\n"
    )
    assert classify_subject(parse_message(raw).subject, RULES).kind is RequestKind.STUDENT
