"""What waits for the secretariat: one small query per kind, and the digest's sections
as a data table. A new kind (deferred items coming due, bulk register tasks, "near
miss" mails) is one more row in SECTIONS and one more read on the notices repository.

Rows carry a number, a moment and a code: never a name, an address or a message's text
(the digest goes to staff mailboxes; the details stay behind the console's sign-in)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from credmail.service.ports import NoticeRepo, WaitingRow
from credmail.service.presentation import reason_label

Read = Callable[[NoticeRepo, datetime], list[WaitingRow]]


@dataclass(frozen=True)
class Section:
    """One digest section: what it lists, its Italian title and counted words, the
    console's list of them, where each row opens (`{id}` is the row's number), and the
    words staff read for a row's code."""

    kind: str
    title: str
    counted: tuple[str, str]  # the summary's words for one and for many
    listing: str  # the console's list of them
    page: str
    read: Read
    words: Callable[[str], str] = lambda code: ""


SECTIONS: tuple[Section, ...] = (
    Section(
        "review",
        "Richieste da rivedere",
        ("richiesta da rivedere", "richieste da rivedere"),
        "/revisione",
        "/revisione/{id}",
        lambda notices, now: notices.waiting_reviews(now),
        lambda code: reason_label(code) if code else "",
    ),
    Section(
        "task",
        "Attività da eseguire nel registro",
        ("attività nel registro", "attività nel registro"),
        "/registro",
        "/registro",
        lambda notices, now: notices.waiting_tasks(now),
    ),
    Section(
        "near_miss",
        "Forse richieste di credenziali (messaggi rimasti nella casella)",
        ("possibile richiesta di credenziali", "possibili richieste di credenziali"),
        "/forse-credenziali",
        "/forse-credenziali",
        lambda notices, now: notices.waiting_near_misses(now),
    ),
)


def what_waits(notices: NoticeRepo, now: datetime) -> dict[str, list[WaitingRow]]:
    """Every section's rows, the oldest first; an empty section is absent."""
    found = {}
    for section in SECTIONS:
        rows = sorted(section.read(notices, now), key=lambda row: (row.since, row.id))
        if rows:
            found[section.kind] = rows
    return found
