"""Who receives mail about an account, and which link it gets: one rule for every caller.

Mail about an adult's account goes only to that adult's own addresses; mail about a
minor student's account goes only to the guardians' addresses (never to the minor).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from credmail.core.addresses import address_key
from credmail.core.values import Person

PURPOSE_ADULT = "adult_reset"
PURPOSE_STUDENT = "student_reset"
TEMPLATE_LINK_ADULT = "link_adult"
TEMPLATE_LINK_STUDENT = "link_student"


def recipients(person: Person, guardians: Iterable[Person], today: date) -> tuple[str, ...]:
    """The addresses on file that may receive mail about `person`'s account, in order.

    `guardians` are the person's own guardians; they count only for a minor student.
    """
    if person.is_minor_on(today):
        found = [a for g in guardians if person.username in g.students for a in g.emails]
    else:
        found = list(person.emails)
    return tuple(dict.fromkeys(found))


def link_kind(person: Person, today: date) -> tuple[str, str]:
    """(purpose, template) of the link for `person`'s account."""
    if person.is_minor_on(today):
        return PURPOSE_STUDENT, TEMPLATE_LINK_STUDENT
    return PURPOSE_ADULT, TEMPLATE_LINK_ADULT


def request_kind_of(person: Person, today: date) -> str:
    """The request kind ("adult" or "student") a link for `person` answers."""
    return "student" if person.is_minor_on(today) else "adult"


def matching(addresses: Iterable[str], wanted: str) -> tuple[str, ...]:
    """The addresses whose key equals `wanted`'s (an address with no key never matches)."""
    target = address_key(wanted)
    if target is None:
        return ()
    return tuple(a for a in addresses if address_key(a) == target)
