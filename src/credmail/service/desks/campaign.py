"""The campaign desk: the September mailing's plan (and a preview of one of its mails),
start, progress, pause and report. Behind both doors (`credmail campaign`, the console's
"Invio di settembre"): a change needs `campaign.manage` (administrators; the terminal
always may) and leaves an entry in the activity log, whichever door it came through."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import structlog

from credmail.core.campaign import WARNING_LABELS, Plan, PlanWarning, Warn
from credmail.service.campaign_mail import Preview, made_up_codes
from credmail.service.campaigns import CampaignError, CampaignService, CampaignStatus, Started
from credmail.service.desks.base import DeskError
from credmail.service.ports import CampaignInfo, PairRecord
from credmail.service.presentation import CAMPAIGN_WARNING_LABELS, italian_time
from credmail.service.review import Actor

if TYPE_CHECKING:
    from credmail.service.desks.audit import AuditDesk

T = TypeVar("T")
PERMISSION = "campaign.manage"


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

    def italian_warnings(self) -> list[tuple[str, str]]:
        """(who or which address, the warning in Italian), as the console lists them."""
        people = self.plan.people
        return [
            (
                f"{_name(people, w.subject)} ({w.subject})" if w.subject in people else w.subject,
                warning_note(w),
            )
            for w in self.plan.warnings
        ]

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


# The plan's CSV and the console's page are the secretariat's: their notes are Italian.
SKIPPED_NOTE = "non inviata: indirizzo PEC"
MADE_UP_NOTE = "senza codice del registro: l'e-mail dice dove trovarlo"
_DETAILS = {"PEC addresses only": "solo indirizzi PEC"}


def warning_note(warning: PlanWarning) -> str:
    """A plan's warning in Italian, its detail included."""
    label = CAMPAIGN_WARNING_LABELS.get(warning.kind, warning.kind)
    detail = _DETAILS.get(warning.detail, warning.detail)
    if warning.kind == Warn.SHARED_ADDRESS and detail.endswith(" families"):
        detail = detail.replace(" families", " famiglie")
    return f"{label} ({detail})" if detail else label


def _name(people: Mapping[str, object], username: str) -> str:
    person = people.get(username)
    return str(getattr(person, "full_name", username))


class CampaignDesk:
    def __init__(self, service: CampaignService, audit: AuditDesk | None = None) -> None:
        self.service = service
        self.audit = audit
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
        actor.require(PERMISSION)
        when = self._parse_at(at) if at else None
        started = _desk(
            lambda: self.service.start(name, when, str(actor), without_codes=without_codes)
        )
        self.log.info("campaign.start", by=str(actor), created=started.created)
        if started.created:
            moment = italian_time(started.campaign.start_at, self.service.timezone)
            detail = f"{started.pairs_added} collegamenti, inizio {moment}"
            self._record(actor, "campaign.start", name, detail)
        return started

    def extend(self, name: str, actor: Actor) -> int:
        actor.require(PERMISSION)
        added = _desk(lambda: self.service.extend(name))
        self.log.info("campaign.extend", by=str(actor), added=added)
        self._record(actor, "campaign.extend", name, f"{added} collegamenti aggiunti")
        return added

    def status(self, name: str) -> CampaignStatus:
        return _desk(lambda: self.service.status(name))

    def listing(self) -> list[CampaignInfo]:
        """Every campaign, newest first."""
        return self.service.listing()

    def pause(self, name: str, actor: Actor) -> int:
        actor.require(PERMISSION)
        self.log.info("campaign.pause", by=str(actor))
        withdrawn = _desk(lambda: self.service.pause(name))
        self._record(actor, "campaign.pause", name, f"{withdrawn} collegamenti tolti dalla coda")
        return withdrawn

    def resume(self, name: str, actor: Actor) -> None:
        actor.require(PERMISSION)
        self.log.info("campaign.resume", by=str(actor))
        _desk(lambda: self.service.resume(name))
        self._record(actor, "campaign.resume", name)

    def cancel(self, name: str, actor: Actor) -> int:
        actor.require(PERMISSION)
        self.log.info("campaign.cancel", by=str(actor))
        count = _desk(lambda: self.service.cancel(name))
        self._record(actor, "campaign.cancel", name, f"{count} collegamenti non inviati")
        return count

    def _record(self, actor: Actor, action: str, name: str, detail: str | None = None) -> None:
        if self.audit is not None:
            self.audit.record(actor, action, f"invio {name}", detail)

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
