"""What `credmail templates check` renders the templates with: sample values for every
placeholder a reply has, each combination of the values every template gets (the link
backend, a person's decision, a reader known by name), and what a translation must never
show (the school's own Italian texts, a code credmail made up)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from credmail.core.values import Person, Role


class Anything:
    """A stand-in for a value the checker knows nothing about (a reply added later)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Anything:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Anything(f"{self._name}.{attr}")

    def __iter__(self) -> Iterator[Anything]:
        return iter((Anything(f"{self._name}[0]"),))

    def __len__(self) -> int:
        return 1

    def __str__(self) -> str:
        return f"<{self._name}>"


BACKENDS = ("worklist", "ldap", "webhook")
# A username credmail made up (the export had no login code): never shown to a family.
MADE_UP = "alunno-5256302"
# The school's own Italian texts as the checker fills them in: no translation may print them.
ITALIAN_TEXTS: Mapping[str, str] = {
    "front_desk_hours": "lunedì-venerdì 8:00-10:00 (orario della segreteria)",
    "webhook_next_steps": "Il sistema della scuola Le invierà le istruzioni (testo della scuola).",
}
READER = Person("G7654321B", Role.GUARDIAN, "Anna", "Bianchi", None, sex="F")


def _pupil(first: str, username: str, sex: str | None, n: int) -> dict[str, Any]:
    return {
        "first_name": first,
        "last_name": "Rossi",
        "full_name": f"{first} Rossi",
        "sex": sex,
        "username": username,
        "link": f"https://registro.example.org/reset/abc.de{n}",
    }


SAMPLE_VALUES: Mapping[str, Any] = {
    "person": Person("G1234567L", Role.GUARDIAN, "Mario", "Rossi", None, sex="M"),
    "student": Person("S1234567A", Role.STUDENT, "Luca", "Rossi", date(2012, 5, 4), sex="M"),
    "username": "S1234567A",
    "link": "https://registro.example.org/reset/abc.def",
    "expires_at": "28/11/2026 11:00",
    "sent_at": "10:02",
    "note": "documento non leggibile",  # review_rejected
    "message": "la password arriva entro sera",  # task_done: the message to the family
    "request_address": "segreteria@example.org",
    # a mail naming several students (the September mailing)
    "students": [_pupil("Luca", "S1234567A", "M", 1), _pupil("Anna", "S7654321B", "F", 2)],
    # task_done for a family's several register tasks at once: the other children
    "also": [_pupil("Anna", "S7654321B", "F", 2)],
}
# The values every template gets, in each combination a reply can meet: the link backend,
# a mail no person decided or a decision of the secretariat, a reader known or not; the
# school's Italian texts set (the translation must do without them).
VARIANTS: tuple[tuple[str, Mapping[str, Any]], ...] = tuple(
    (
        f"backend={backend}, automatic={automatic}, reader={'known' if reader else 'unknown'}",
        {**ITALIAN_TEXTS, "backend": backend, "automatic": automatic, "reader": reader},
    )
    for backend in BACKENDS
    for automatic in (True, False)
    for reader in (None, READER)
)
# Sample arguments of the partials' macros, by parameter name (every combination is tried).
MACRO_ARGUMENTS: Mapping[str, tuple[Any, ...]] = {
    "s": tuple({"full_name": "Luca Rossi", "sex": sex} for sex in ("M", "F", None)),
    "reader": (None, READER),
    "fallback": ("<fallback>",),
    "student": (False, True),
}


def made_up(values: Mapping[str, Any]) -> dict[str, Any]:
    """The same values with every login code replaced by one credmail made up."""
    found = dict(values)
    if "username" in found:
        found["username"] = MADE_UP
    for many in ("students", "also"):
        if many in found:
            found[many] = [{**s, "username": MADE_UP} for s in found[many]]
    return found


def leaks(text: str, italian: str = "") -> list[str]:
    """What a translation must never show: the school's Italian texts, a made-up code
    (unless the Italian text shows it too: a school's own reply may)."""
    found = [
        f"prints the school's Italian {key} (give text.{key} in language.toml or do without)"
        for key, italian in ITALIAN_TEXTS.items()
        if italian in text
    ]
    if MADE_UP in text and MADE_UP not in italian:
        found.append(f"shows the code credmail made up ({MADE_UP}): say where the code is")
    return found
