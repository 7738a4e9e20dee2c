"""The secretariat's digest: a short Italian mail listing what waits, sent at
`notify.digest_at` on school days through the outbox, only when something waits.

Exactly once per slot: the slot's row (unique per kind and slot) and the outbox rows
commit in one transaction, so a restart or a SIGKILL finds the slot done or not done,
never half done; two processes racing for a slot meet the unique key, and the loser's
mails roll back with it. The digest template counts against no family's limits
(service.pacing.STAFF_TEMPLATES)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from credmail.core.schedule import ClosedOn, due_slot, next_slot
from credmail.service.notify.mailing import StaffMail
from credmail.service.notify.waiting import SECTIONS, Section, what_waits
from credmail.service.ports import WaitingRow
from credmail.service.presentation import italian_time, italian_time_on, plural

TEMPLATE_DIGEST = "staff_digest"
KIND_DIGEST = "digest"
MAX_ROWS = 15  # per section; the rest is counted, with the console's list


@dataclass(frozen=True)
class DigestConfig:
    staff: tuple[str, ...]
    times: tuple[str, ...]
    weekdays: frozenset[int]
    closed_on: ClosedOn
    console_url: str  # the console's public address, without a trailing slash


@dataclass(frozen=True)
class DigestText:
    """A digest as staff will read it (the dry run prints it)."""

    to: tuple[str, ...]
    subject: str
    text: str


class DigestService:
    def __init__(self, mail: StaffMail, config: DigestConfig) -> None:
        self.mail, self.config = mail, config
        self.uow, self.composer, self.clock = mail.uow, mail.composer, mail.clock
        self.timezone = mail.timezone
        self.log = structlog.get_logger("credmail.notify")

    def due(self) -> str | None:
        """Today's latest slot that has come, or None (no staff, a closed day, too early)."""
        if not self.config.staff:
            return None
        local = self.clock().astimezone(self.timezone).replace(tzinfo=None)
        return due_slot(local, self.config.times, self.config.weekdays, self.config.closed_on)

    def run_due(self) -> int:
        """The daemon's tick: the due slot's digest, queued once. Returns mails queued."""
        slot = self.due()
        if slot is None:
            return 0
        with self.uow(read_only=True) as uow:  # most ticks find it done
            if uow.notices.slot_taken(KIND_DIGEST, slot):
                return 0
        return self._queue(slot)

    def send_now(self) -> int:
        """`credmail notify digest`: one digest now, outside the schedule (0: nothing waits)."""
        return self._queue(f"manual {self.clock().isoformat()}")

    def preview(self) -> DigestText | None:
        """The digest that would go now, written nowhere (None: nothing waits)."""
        now = self.clock()
        with self.uow(read_only=True) as uow:
            waiting = what_waits(uow.notices, now)
        if not waiting:
            return None
        subject, text = self.composer.render(TEMPLATE_DIGEST, self._values(waiting, now))
        return DigestText(self.config.staff, subject, text)

    def _queue(self, slot: str) -> int:
        now = self.clock()
        with self.uow() as uow:
            waiting = what_waits(uow.notices, now)
            mails = len(self.config.staff) if waiting else 0
            if uow.notices.slot_taken(KIND_DIGEST, slot) or not uow.notices.take_slot(
                KIND_DIGEST, slot, now, mails
            ):
                return 0
            if mails:
                values = self._values(waiting, now)
                self.mail.queue(uow, TEMPLATE_DIGEST, self.config.staff, values, now)
            uow.commit()
        counts = {kind: len(rows) for kind, rows in waiting.items()}
        self.log.info("notify.digest", slot=slot, mails=mails, **counts)
        return mails

    def _values(self, waiting: Mapping[str, list[WaitingRow]], now: datetime) -> dict[str, Any]:
        sections = [
            self._section(section, waiting[section.kind], now)
            for section in SECTIONS
            if section.kind in waiting
        ]
        return {
            "sections": sections,
            "summary": ", ".join(s["counted"] for s in sections),
            "console_url": self.config.console_url,
            "next_digest": self._next(now),
            "now": italian_time(now, self.timezone),
        }

    def _section(
        self, section: Section, rows: Sequence[WaitingRow], now: datetime
    ) -> dict[str, Any]:
        shown = [
            {
                "number": row.id,
                "age": italian_age((now - row.since).total_seconds()),
                "since": italian_time_on(row.since, self.timezone, "da"),
                "what": section.words(row.code),
                "url": self.config.console_url + section.page.format(id=row.id),
            }
            for row in rows[:MAX_ROWS]
        ]
        return {
            "kind": section.kind,
            "title": section.title,
            "count": len(rows),
            "counted": plural(len(rows), *section.counted),
            "rows": shown,
            "more": max(0, len(rows) - MAX_ROWS),
            "list_url": self.config.console_url + section.listing,
        }

    def _next(self, now: datetime) -> str:
        local = now.astimezone(self.timezone).replace(tzinfo=None)
        config = self.config
        found = next_slot(local, config.times, config.weekdays, config.closed_on)
        if found is None:
            return ""
        return italian_time_on(found.replace(tzinfo=self.timezone), self.timezone)


def italian_age(seconds: float) -> str:
    """How long something has waited: "12 minuti", "1 ora", "3 giorni"."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return plural(minutes, "minuto", "minuti")
    hours = minutes // 60
    if hours < 48:
        return plural(hours, "ora", "ore")
    return plural(hours // 24, "giorno", "giorni")
