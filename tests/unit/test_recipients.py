"""Who receives mail about an account (one rule), address keys, terminal-safe text."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from credmail.core.classify import classify_subject, default_rules
from credmail.core.decide import decide
from credmail.core.parse import parse_message
from credmail.core.recipients import link_kind, recipients
from credmail.core.terminal import printable
from credmail.core.values import Facts, Person, Role, SenderAuth, SendLink
from tests.support.requests import request

TODAY = date(2026, 9, 2)
MINOR = Person("S1", Role.STUDENT, "Luca", "Rossi", date(2012, 5, 1), ("luca@example.org",))
ADULT = Person("S5", Role.STUDENT, "Davide", "Neri", date(2007, 9, 2), ("davide@example.org",))
MUM = Person("G1", Role.GUARDIAN, "Elena", "Neri", None, ("elena@example.org",), ("S1", "S5"))
OTHER = Person("G2", Role.GUARDIAN, "Ugo", "Bassi", None, ("ugo@example.org",), ("S9",))


def test_an_adults_mail_goes_to_the_adult_only() -> None:
    assert recipients(ADULT, (MUM,), TODAY) == ("davide@example.org",)
    assert link_kind(ADULT, TODAY) == ("adult_reset", "link_adult")


def test_a_minors_mail_goes_to_their_own_guardians_only() -> None:
    assert recipients(MINOR, (MUM, OTHER), TODAY) == ("elena@example.org",)
    assert recipients(MINOR, (), TODAY) == ()
    assert link_kind(MINOR, TODAY) == ("student_reset", "link_student")


def _student_request(
    sender: str, body: str, people: tuple[Person, ...], students: tuple[Person, ...]
) -> Facts:
    raw = request("placeholder@example.org", "Richiesta credenziali studente", body=body)
    mail = parse_message(raw.replace(b"placeholder@example.org", sender.encode()))
    assert mail.sender_as_written == sender
    mail = replace(mail, from_problems=())  # an 8-bit From is a defect; here decide's match only
    return Facts(
        mail=mail,
        classification=classify_subject(mail.subject, default_rules()),
        own_addresses=frozenset(),
        references_our_mail=False,
        people_on_file=people,
        linked_students=students,
        today=TODAY,
        sender_auth=SenderAuth(True, "dmarc"),
    )


S1 = Person("S1", Role.STUDENT, "Luca", "Rossi", date(2012, 5, 1))
S2 = Person("S2", Role.STUDENT, "Anna", "Sala", date(2013, 5, 1))


def test_decide_matches_the_exact_address_of_a_guardian_of_the_chosen_student() -> None:
    """Issue 8.11: x@strasse.de (G0) and x@straße.de (G9) are two addresses (IDNA 2003
    folded them together)."""
    folded = Person("G0", Role.GUARDIAN, "Ada", "Rossi", None, ("x@strasse.de",), ("S1",))
    sharp = Person("G9", Role.GUARDIAN, "Ugo", "Rossi", None, ("x@straße.de",), ("S1",))
    facts = _student_request("x@straße.de", "Per Luca.", (folded, sharp), (S1,))
    assert decide(facts).actions == (
        SendLink("S1", "student_reset", "x@straße.de", "link_student"),
    )


def test_decide_never_writes_to_a_guardian_of_another_student() -> None:
    """Issue 8.11: G0 is not S1's guardian; its folded-equal address is not a candidate."""
    folded = Person("G0", Role.GUARDIAN, "Ada", "Sala", None, ("x@strasse.de",), ("S2",))
    sharp = Person("G9", Role.GUARDIAN, "Ugo", "Rossi", None, ("x@straße.de",), ("S1",))
    facts = _student_request("x@strasse.de", "Per Luca.", (folded, sharp), (S1, S2))
    decision = decide(facts)
    assert not any(isinstance(a, SendLink) for a in decision.actions)
    assert decision.reasons == ("undecided",)


def test_printable_strips_controls_and_bidi_overrides() -> None:
    hostile = "a\x1b[2J\x9b31m\x07\r\u202egnp.exe\u2066b\x00 àè\n\tz"
    assert printable(hostile) == "a[2J31mgnp.exeb àè\n\tz"
    assert printable("riga\nriga", one_line=True) == "riga riga"
