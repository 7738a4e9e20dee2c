"""Defer a review item until a date ("Rinvia"): it leaves the queue and comes back, in
the queue and in the secretariat's digest, on that date (at midnight, the school's time).

The queries a digest or a page needs: `waiting` (the queue at this moment, the items
come back included), `due` (deferred items whose date came) and `deferred` (still out).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from credmail.service.desks.base import DeskError
from credmail.service.ports import Clock, ReviewItem, ReviewStatus, UnitOfWorkFactory
from credmail.service.presentation import italian_date
from credmail.service.review import Actor, AlreadyDecided, ReviewDesk, ReviewError, audit_entry

DAY_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y", "%Y-%m-%d")
LONGEST = timedelta(days=366)


def parse_day(text: str) -> date:
    """An Italian date (gg/mm/aaaa, also with - or .) or an ISO one (aaaa-mm-gg)."""
    written = text.strip()
    for pattern in DAY_FORMATS:
        try:
            return datetime.strptime(written, pattern).date()
        except ValueError:
            continue
    raise DeskError(f"data non valida: {written[:40]} (scrivere gg/mm/aaaa, es. 15/01/2027)")


@dataclass(frozen=True)
class Deferral:
    """An item out of the queue until `until` (midnight of `day`, the school's time)."""

    item_id: int
    day: date
    until: datetime


@dataclass(frozen=True)
class QueueCounts:
    waiting: int  # in the queue now (deferred items whose date came included)
    deferred: int  # out of the queue until a later date


class DeferralsDesk:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, timezone: ZoneInfo, review: ReviewDesk
    ) -> None:
        self.uow, self.clock, self.timezone, self.review = uow, clock, timezone, review

    def defer(
        self, item_id: int, day: date | str, actor: Actor, note: str | None = None
    ) -> Deferral:
        """Out of the queue until `day`, which must come after today (at most a year on)."""
        self.review.authorize(actor)
        now = self.clock()
        wanted = parse_day(day) if isinstance(day, str) else day
        today = now.astimezone(self.timezone).date()
        if wanted <= today:
            raise DeskError(
                f"la data del rinvio deve essere successiva a oggi ({italian_date(today)})"
            )
        if wanted - today > LONGEST:
            raise DeskError("si può rinviare al massimo di un anno")
        until = datetime.combine(wanted, time(), self.timezone)
        with self.uow() as uow:
            item = uow.review.get(item_id)
            if item is None:
                raise ReviewError(f"nessuna richiesta con id {item_id}")
            if item.status != ReviewStatus.PENDING or not uow.review.defer(item_id, until):
                raise AlreadyDecided(item_id, item.decided_by, item.status)
            detail = f"rinviata al {italian_date(wanted)}" + (f"; nota: {note}" if note else "")
            entry = audit_entry(actor, now, "review.deferred", f"richiesta {item_id}", detail)
            uow.audit.add(entry)
            uow.commit()
        return Deferral(item_id, wanted, until)

    def waiting(self) -> list[ReviewItem]:
        """The queue now: pending items, the deferred ones whose date came included."""
        with self.uow(read_only=True) as uow:
            return uow.review.pending(self.clock())

    def due(self) -> list[ReviewItem]:
        """Deferred items whose date came: back in the queue (the digest names them)."""
        with self.uow(read_only=True) as uow:
            return uow.review.due(self.clock())

    def deferred(self) -> list[ReviewItem]:
        """Items still out of the queue, the soonest back first."""
        with self.uow(read_only=True) as uow:
            return uow.review.deferred(self.clock())

    def counts(self) -> QueueCounts:
        now = self.clock()
        with self.uow(read_only=True) as uow:
            return QueueCounts(uow.review.count_pending(now), uow.review.count_deferred(now))
