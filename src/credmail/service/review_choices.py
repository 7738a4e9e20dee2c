"""The approvals a held request offers, as the console shows them.

For every person the request could concern (the people on file with the sender's
address, and a guardian's students) one choice: whose account, which link it gets, the
addresses that may receive it (core.recipients, the rule `approve` applies) and whether
it answers what the request asked. A choice that does not (a guardian's own credentials
for a student request, an adult student's for a guardian's) is an override: offered
apart, with what it does said in Italian, and confirmed in a second step. A request of
unknown kind asked for nothing in particular: every choice fits, and says which link.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from credmail.core.recipients import matching, recipients, request_kind_of
from credmail.core.values import Person, RequestKind, Role
from credmail.service.ports import UnitOfWork
from credmail.service.presentation import kind_label, link_label, role_label


@dataclass(frozen=True)
class Choice:
    """Approving the request for `person`: the `link` ("adult" or "student") their
    account gets, sent to one of `addresses`; `via` is the guardian whose student this
    is (None: the person shares the sender's address)."""

    person: Person
    link: str
    addresses: tuple[str, ...]
    suggested: str | None
    fits: bool
    via: Person | None = None
    consequence: str = ""

    @property
    def username(self) -> str:
        return self.person.username

    @property
    def blocked(self) -> str | None:
        """Why nothing can be sent for this person (no address may receive the link)."""
        if self.addresses:
            return None
        whose = " dei genitori/tutori" if self.link == RequestKind.STUDENT else ""
        return (
            f"Nessun indirizzo registrato{whose}: il collegamento per "
            f"{self.person.full_name} non può essere inviato."
        )


def approval_choices(
    uow: UnitOfWork,
    asked: str,
    sender: str | None,
    people: Iterable[tuple[Person, Person | None]],
    today: date,
) -> tuple[Choice, ...]:
    """One choice per person (a student listed under two guardians counts once)."""
    found: dict[str, Choice] = {}
    for person, via in people:
        if person.username not in found:
            found[person.username] = _choice(uow, asked, sender, person, via, today)
    return tuple(found.values())


def _choice(
    uow: UnitOfWork,
    asked: str,
    sender: str | None,
    person: Person,
    via: Person | None,
    today: date,
) -> Choice:
    link = request_kind_of(person, today)
    guardians = uow.directory.guardians_of(person.username) if person.is_minor_on(today) else []
    addresses = recipients(person, guardians, today)
    own = matching(addresses, sender) if sender else ()
    fits = asked in (link, RequestKind.UNKNOWN)
    consequence = "" if fits else _consequence(person, asked, link, addresses, via)
    return Choice(
        person, link, addresses, own[0] if len(own) == 1 else None, fits, via, consequence
    )


def _consequence(
    person: Person, asked: str, link: str, addresses: tuple[str, ...], via: Person | None
) -> str:
    """What approving an override does, said to the reviewer before they confirm it."""
    to = ", ".join(addresses) or "nessun indirizzo registrato"
    name = person.full_name
    request = f"La richiesta chiede {kind_label(asked)}"
    if link == RequestKind.ADULT and person.role is Role.STUDENT:
        writer = f", non a {via.full_name} che ha scritto" if via is not None else ""
        return (
            f"{request}, ma {name} è maggiorenne: riceverà il collegamento per le proprie "
            f"credenziali personali al proprio indirizzo ({to}){writer}."
        )
    if link == RequestKind.ADULT:
        return (
            f"{request}, ma {name} è {role_label(person.role)}: riceverà il "
            f"collegamento per le proprie credenziali personali ({to}), non quelle di uno "
            "studente."
        )
    return (
        f"{request}, ma {name} è uno studente minorenne: il collegamento "
        f"{link_label(link)} andrà ai genitori/tutori ({to})."
    )
