"""The campaign desk: the September mailing's plan, start, progress, pause and report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import structlog

from credmail.core.campaign import WARNING_LABELS, Plan
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


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    duration: timedelta

    def rows(self) -> list[PlanRow]:
        people = self.plan.people
        found = []
        for mail in self.plan.mails:
            guardians = ", ".join(_name(people, g) for g in mail.guardians)
            for student in mail.students:
                found.append(PlanRow(mail.address, student, _name(people, student), guardians))
        return found

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

    def start(self, name: str, at: str | None, actor: Actor) -> Started:
        when = self._parse_at(at) if at else None
        started = _desk(lambda: self.service.start(name, when, str(actor)))
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
