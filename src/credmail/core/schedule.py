"""When the secretariat's digest is due: pure date arithmetic on the school's clock.

A slot is one configured time of one school day ("2026-12-08 07:45"). Only the latest
slot that has come today is due: one missed while the daemon was down is sent late the
same day (an earlier missed one of the same day is covered by it), never the next day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta

ClosedOn = Callable[[date], bool]


def school_day(day: date, weekdays: frozenset[int], closed_on: ClosedOn) -> bool:
    return day.weekday() in weekdays and not closed_on(day)


def slot_key(day: date, at: str) -> str:
    return f"{day.isoformat()} {at}"


def due_slot(
    local_now: datetime, times: Sequence[str], weekdays: frozenset[int], closed_on: ClosedOn
) -> str | None:
    """The latest slot of today that has come, or None (a closed day, or too early)."""
    today = local_now.date()
    if not school_day(today, weekdays, closed_on):
        return None
    now = local_now.strftime("%H:%M")
    passed = [at for at in sorted(times) if at <= now]
    return slot_key(today, passed[-1]) if passed else None


def next_slot(
    local_now: datetime, times: Sequence[str], weekdays: frozenset[int], closed_on: ClosedOn
) -> datetime | None:
    """The next slot after `local_now` (naive local date and time), within a year."""
    now = local_now.strftime("%H:%M")
    for offset in range(366):
        day = local_now.date() + timedelta(days=offset)
        if not school_day(day, weekdays, closed_on):
            continue
        for at in sorted(times):
            if offset or at > now:
                return datetime.combine(day, time.fromisoformat(at))
    return None
