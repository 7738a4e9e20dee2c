"""The pure decision, table-driven over .eml fixtures and a small directory."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from email.header import Header
from pathlib import Path

import pytest

from credmail.core.addresses import normalize_address
from credmail.core.classify import classify_subject, default_rules
from credmail.core.decide import decide
from credmail.core.parse import parse_message
from credmail.core.values import (
    DecideOptions,
    Decision,
    Facts,
    HoldForReview,
    Outcome,
    Person,
    Role,
    SenderAuth,
    SendLink,
    SendReply,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "eml"
TODAY = date(2026, 9, 2)
OWN = frozenset({"segreteria@istitutostanga.edu.it"})
OUR_MESSAGE_IDS = {"<42.credmail@istitutostanga.edu.it>"}

PEOPLE = (
    Person("G1", Role.GUARDIAN, "Mario", "Rossi", None, ("Mario.Rossi@example.org",), ("S1",)),
    Person("S1", Role.STUDENT, "Luca", "Rossi", date(2012, 5, 1)),
    Person(
        "G2",
        Role.GUARDIAN,
        "Anna",
        "Bianchi",
        None,
        ("famiglia.bianchi@example.org",),
        ("S2", "S3"),
    ),
    Person(
        "G3",
        Role.GUARDIAN,
        "Paolo",
        "Bianchi",
        None,
        ("famiglia.bianchi@example.org",),
        ("S2", "S3"),
    ),
    Person("S2", Role.STUDENT, "Giulia", "Bianchi", date(2014, 1, 1)),
    Person("S3", Role.STUDENT, "Nicolò", "Bianchi", date(2016, 3, 3)),
    Person(
        "S4", Role.STUDENT, "Sara", "Verdi", date(2011, 1, 1), ("sara.verdi@studenti.example.org",)
    ),
    Person("S5", Role.STUDENT, "Davide", "Neri", date(2008, 9, 2), ("davide.neri@example.org",)),
    Person("G5", Role.GUARDIAN, "Elena", "Neri", None, ("elena.neri@example.org",), ("S5",)),
    Person("T1", Role.TEACHER, "Giovanna", "Esposito", None, ("g.esposito@example.org",)),
)


AUTHENTICATED = SenderAuth(True, "dmarc")
DEFAULTS = DecideOptions()


def facts_for(
    raw: bytes,
    today: date = TODAY,
    auth: SenderAuth = AUTHENTICATED,
    options: DecideOptions = DEFAULTS,
) -> Facts:
    """What the pipeline would gather, from an in-memory directory."""
    mail = parse_message(raw)
    on_file = tuple(p for p in PEOPLE if mail.sender in {normalize_address(e) for e in p.emails})
    linked = {s for p in on_file if p.role is Role.GUARDIAN for s in p.students}
    return Facts(
        mail=mail,
        classification=classify_subject(mail.subject, default_rules()),
        own_addresses=OWN,
        references_our_mail=bool(OUR_MESSAGE_IDS & set(mail.in_reply_to + mail.references)),
        people_on_file=on_file,
        linked_students=tuple(p for p in PEOPLE if p.username in sorted(linked)),
        today=today,
        sender_auth=auth,
        options=options,
    )


def decide_file(name: str) -> Decision:
    return decide(facts_for((FIXTURES / name).read_bytes()))


CASES = [
    # file, outcome, reasons, action
    (
        "adult_guardian.eml",
        Outcome.ANSWERED,
        (),
        SendLink("G1", "adult_reset", "Mario.Rossi@example.org", "link_adult"),
    ),
    (
        "adult_encoded_uppercase.eml",
        Outcome.ANSWERED,
        (),
        SendLink("G1", "adult_reset", "Mario.Rossi@example.org", "link_adult"),
    ),
    (
        "reply_to_attacker.eml",
        Outcome.ANSWERED,
        (),
        SendLink("G1", "adult_reset", "Mario.Rossi@example.org", "link_adult"),
    ),
    (
        "minor_own_address.eml",
        Outcome.ANSWERED,
        (),
        SendReply("minor_procedure", "sara.verdi@studenti.example.org", about="S4"),
    ),
    (
        "student_first_name_no_accent.eml",
        Outcome.ANSWERED,
        (),
        SendLink("S3", "student_reset", "famiglia.bianchi@example.org", "link_student"),
    ),
    (
        "auto_submitted_no.eml",
        Outcome.ANSWERED,
        (),
        SendLink("G1", "adult_reset", "Mario.Rossi@example.org", "link_adult"),
    ),
    ("two_from_fields.eml", Outcome.REVIEW, ("repeated_from",), None),
    ("multi_address_from.eml", Outcome.REVIEW, ("multi_address_from",), None),
    ("missing_from.eml", Outcome.REVIEW, ("missing_from",), None),
    ("display_name_spoof.eml", Outcome.REVIEW, ("display_name_address", "unknown_sender"), None),
    (
        "non_ascii_local_part.eml",
        Outcome.REVIEW,
        ("malformed_from", "non_ascii_local_part", "unknown_sender"),
        None,
    ),
    ("forward_prefix.eml", Outcome.REVIEW, ("reply_prefix",), None),
    ("student_both_named.eml", Outcome.REVIEW, ("ambiguous_student",), None),
    ("guardian_of_adult_student.eml", Outcome.REVIEW, ("adult_student",), None),
    ("teacher_asks_student.eml", Outcome.REVIEW, ("not_guardian",), None),
    ("unknown_student_request.eml", Outcome.REVIEW, ("unknown_sender",), None),
    ("delivery_report.eml", Outcome.AUTOMATED, ("delivery_report", "robot_sender"), None),
    ("precedence_bulk.eml", Outcome.AUTOMATED, ("precedence",), None),
    ("x_autoreply.eml", Outcome.AUTOMATED, ("autoreply_header",), None),
    ("own_address.eml", Outcome.AUTOMATED, ("own_address",), None),
    ("noreply_sender.eml", Outcome.AUTOMATED, ("robot_sender",), None),
    ("null_return_path.eml", Outcome.AUTOMATED, ("null_sender",), None),
    ("reply_to_our_mail.eml", Outcome.AUTOMATED, ("reply_to_our_mail",), None),
    ("ordinary.eml", Outcome.IGNORED, (), None),
]


@pytest.mark.parametrize(("name", "outcome", "reasons", "action"), CASES, ids=[c[0] for c in CASES])
def test_decision_table(
    name: str, outcome: Outcome, reasons: tuple[str, ...], action: SendLink | SendReply | None
) -> None:
    decision = decide_file(name)
    assert decision.outcome is outcome
    assert decision.reasons == reasons
    if outcome is Outcome.REVIEW:
        assert decision.actions == (HoldForReview(reasons),)
    elif action is not None:
        assert decision.actions == (action,)
    else:
        assert decision.actions == ()


def test_every_fixture_is_in_the_table() -> None:
    assert {p.name for p in FIXTURES.glob("*.eml")} == {c[0] for c in CASES}


def test_all_review_reasons_are_collected_not_just_the_first() -> None:
    raw = (
        b"From: famiglia.bianchi@example.org\r\nSubject: Re: richiesta credenziali\r\n"
        b"Message-ID: <x@example.org>\r\n\r\nBuongiorno\r\n"
    )
    assert decide(facts_for(raw)).reasons == ("reply_prefix", "ambiguous_person")


def test_shared_address_naming_one_adult_gets_that_adult() -> None:
    raw = (
        b"From: famiglia.bianchi@example.org\r\nSubject: richiesta credenziali\r\n"
        b"\r\nSono Paolo Bianchi.\r\n"
    )
    (action,) = decide(facts_for(raw)).actions
    assert action == SendLink("G3", "adult_reset", "famiglia.bianchi@example.org", "link_adult")


def test_student_named_by_username_in_subject() -> None:
    raw = (
        b"From: famiglia.bianchi@example.org\r\n"
        b"Subject: richiesta credenziali studente - S2\r\n\r\nGrazie\r\n"
    )
    (action,) = decide(facts_for(raw)).actions
    assert isinstance(action, SendLink) and action.username == "S2"


def test_age_is_computed_on_the_day_of_processing() -> None:
    raw = (FIXTURES / "guardian_of_adult_student.eml").read_bytes()
    day_before_18th = date(2026, 9, 1)
    (action,) = decide(facts_for(raw, today=day_before_18th)).actions
    assert action == SendLink("S5", "student_reset", "elena.neri@example.org", "link_student")
    assert decide(facts_for(raw, today=TODAY)).reasons == ("adult_student",)


def test_student_aged_18_counts_as_adult_for_own_request() -> None:
    raw = b"From: davide.neri@example.org\r\nSubject: richiesta credenziali\r\n\r\nx\r\n"
    (action,) = decide(facts_for(raw)).actions
    assert action == SendLink("S5", "adult_reset", "davide.neri@example.org", "link_adult")
    (younger,) = decide(facts_for(raw, today=date(2026, 9, 1))).actions
    assert younger == SendReply("minor_procedure", "davide.neri@example.org", about="S5")


def test_guardian_with_no_linked_student_goes_to_review() -> None:
    raw = b"From: g.esposito@example.org\r\nSubject: richiesta credenziali studente\r\n\r\nx\r\n"
    facts = facts_for(raw)
    teacher_as_guardian = replace(facts.people_on_file[0], role=Role.GUARDIAN)
    decision = decide(replace(facts, people_on_file=(teacher_as_guardian,)))
    assert decision.reasons == ("no_linked_student",)


def test_decide_is_deterministic_and_pure() -> None:
    facts = facts_for((FIXTURES / "adult_guardian.eml").read_bytes())
    assert decide(facts) == decide(facts)


def test_encoded_accented_display_name_is_answered() -> None:
    raw = (FIXTURES / "adult_guardian.eml").read_bytes()
    accented = Header("Jean-Pierre Ferrè", "utf-8").encode()
    raw = re.sub(rb"(?m)^From: .*$", f"From: {accented} <Mario.Rossi@example.org>".encode(), raw)
    (action,) = decide(facts_for(raw)).actions
    assert action == SendLink("G1", "adult_reset", "Mario.Rossi@example.org", "link_adult")


def test_unauthenticated_sender_is_held_and_nothing_is_sent() -> None:
    raw = (FIXTURES / "adult_guardian.eml").read_bytes()
    decision = decide(facts_for(raw, auth=SenderAuth(False)))
    assert decision.reasons == ("unauthenticated_sender",)
    assert decision.actions == (HoldForReview(("unauthenticated_sender",)),)


def test_authentication_problems_are_reasons() -> None:
    raw = (FIXTURES / "adult_guardian.eml").read_bytes()
    decision = decide(facts_for(raw, auth=SenderAuth(False, problems=("auth_results_conflict",))))
    assert decision.reasons == ("auth_results_conflict", "unauthenticated_sender")


@pytest.mark.parametrize("authenticated", [True, False])
def test_acknowledgement_only_to_an_authenticated_unknown_sender(authenticated: bool) -> None:
    raw = b"From: nuovo@example.net\r\nSubject: richiesta credenziali\r\n\r\nx\r\n"
    options = DecideOptions(acknowledge_unknown=True)
    auth = AUTHENTICATED if authenticated else SenderAuth(False)
    decision = decide(facts_for(raw, auth=auth, options=options))
    acks = [a for a in decision.actions if isinstance(a, SendReply)]
    assert acks == (
        [SendReply("acknowledge_unknown", "nuovo@example.net")] if authenticated else []
    )
    assert decision.outcome is Outcome.REVIEW


def test_no_acknowledgement_unless_configured() -> None:
    raw = b"From: nuovo@example.net\r\nSubject: richiesta credenziali\r\n\r\nx\r\n"
    assert decide(facts_for(raw)).actions == (HoldForReview(("unknown_sender",)),)


def test_no_acknowledgement_to_a_display_name_spoof() -> None:
    raw = (FIXTURES / "display_name_spoof.eml").read_bytes()
    decision = decide(facts_for(raw, options=DecideOptions(acknowledge_unknown=True)))
    assert not any(isinstance(a, SendReply) for a in decision.actions)


def test_confusable_domain_is_flagged() -> None:
    raw = "From: mario.rossi@exаmple.org\r\nSubject: richiesta credenziali\r\n\r\nx\r\n"
    decision = decide(facts_for(raw.encode()))
    assert "confusable_domain" in decision.reasons


def test_request_about_a_pupil_who_left_goes_to_review() -> None:
    raw = b"From: Mario.Rossi@example.org\r\nSubject: richiesta credenziali studente\r\n\r\nx\r\n"
    facts = facts_for(raw)
    (action,) = decide(facts).actions
    assert isinstance(action, SendLink) and action.username == "S1"
    left = tuple(replace(p, active=False) for p in facts.linked_students)
    decision = decide(replace(facts, linked_students=left))
    assert decision.outcome is Outcome.REVIEW
    assert decision.reasons == ("not_enrolled",)
    assert not any(isinstance(a, SendLink) for a in decision.actions)


def test_an_adult_former_pupil_asking_for_himself_goes_to_review() -> None:
    raw = b"From: davide.neri@example.org\r\nSubject: richiesta credenziali\r\n\r\nx\r\n"
    facts = facts_for(raw)
    left = tuple(replace(p, active=False) for p in facts.people_on_file)
    assert decide(replace(facts, people_on_file=left)).reasons == ("not_enrolled",)
