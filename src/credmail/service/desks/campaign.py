"""The campaign desk: the September mailing's plan (and a preview of one of its mails),
start, progress, pause and report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import structlog

from credmail.core.campaign import WARNING_LABELS, Plan
from credmail.service.campaign_mail import Preview, made_up_codes
from credmail.service.campaigns import CampaignError, CampaignService, CampaignStatus, Started
from credmail.service.desks.base import DeskError
from credmail.service.ports import PairRecord
from credmail.service.review import Actor

T = TypeVar("T")


@dataclass(frozen=True)
class PlanRow:
    """One line of the plan spreadsheet: an address, a student, the guardians."""

    address: str
    student: str
    student_name: str
    guardians: str
    note: str = ""


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    duration: timedelta

    def rows(self) -> list[PlanRow]:
        """A row per link the campaign sends, then per link it skips (PEC)."""
        people, made_up = self.plan.people, set(self.made_up_codes())
        found = []
        for mails, skipped in ((self.plan.mails, False), (self.plan.skipped, True)):
            for mail in mails:
                guardians = ", ".join(_name(people, g) for g in mail.guardians)
                for student in mail.students:
                    note = MADE_UP_NOTE if student in made_up else ""
                    note = SKIPPED_NOTE if skipped else note
                    name = _name(people, student)
                    found.append(PlanRow(mail.address, student, name, guardians, note))
        return found

    def made_up_codes(self) -> list[str]:
        """Mailed students whose username credmail made up: no register code to give."""
        return made_up_codes(self.plan)

    def warning_lines(self) -> list[tuple[str, str, str]]:
        """(kind label, subject, detail) for every warning."""
        people = self.plan.people
        return [
            (
                WARNING_LABELS.get(w.kind, w.kind),
                f"{w.subject} ({_name(people, w.subject)})" if w.subject in people else w.subject,
                w.detail,
            )
            for w in self.plan.warnings
        ]


# The plan's CSV is the secretariat's: its notes are Italian.
SKIPPED_NOTE = "non inviata: indirizzo PEC"
MADE_UP_NOTE = "senza codice del registro: l'e-mail dice dove trovarlo"


def _name(people: Mapping[str, object], username: str) -> str:
    person = people.get(username)
    return str(getattr(person, "full_name", username))


class CampaignDesk:
    def __init__(self, service: CampaignService) -> None:
        self.service = service
        self.log = structlog.get_logger("credmail.desks.campaign")

    @property
    def timezone(self) -> object:
        return self.service.timezone

    def plan(self) -> PlanView:
        plan = self.service.plan()
        return PlanView(plan, self.service.estimate(len(plan.mails)))

    def preview(self, who: str | None) -> Preview:
        """One planned mail as its family would read it; nothing stored, no link made."""
        return _desk(lambda: self.service.preview(who))

    def start(
        self, name: str, at: str | None, actor: Actor, *, without_codes: bool = False
    ) -> Started:
        """`without_codes`: start even when no mailed student has a register login code."""
        when = self._parse_at(at) if at else None
        started = _desk(
            lambda: self.service.start(name, when, str(actor), without_codes=without_codes)
        )
        self.log.info("campaign.start", by=str(actor), created=started.created)
        return started

    def extend(self, name: str, actor: Actor) -> int:
        added = _desk(lambda: self.service.extend(name))
        self.log.info("campaign.extend", by=str(actor), added=added)
        return added

    def status(self, name: str) -> CampaignStatus:
        return _desk(lambda: self.service.status(name))

    def pause(self, name: str, actor: Actor) -> int:
        self.log.info("campaign.pause", by=str(actor))
        return _desk(lambda: self.service.pause(name))

    def resume(self, name: str, actor: Actor) -> None:
        self.log.info("campaign.resume", by=str(actor))
        _desk(lambda: self.service.resume(name))

    def cancel(self, name: str, actor: Actor) -> int:
        self.log.info("campaign.cancel", by=str(actor))
        return _desk(lambda: self.service.cancel(name))

    def report(self, name: str) -> list[PairRecord]:
        return _desk(lambda: self.service.report(name))

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.service.timezone)

    def _parse_at(self, text: str) -> datetime:
        try:
            naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
        except ValueError:
            raise DeskError(f'--at {text!r}: use "YYYY-MM-DD HH:MM" (local time)') from None
        return naive.replace(tzinfo=self.service.timezone)


def _desk(call: Callable[[], T]) -> T:
    try:
        return call()
    except CampaignError as exc:
        raise DeskError(str(exc)) from None
