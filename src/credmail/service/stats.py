"""Statistics for the head teacher and the DPO: the values, the port the database answers
through, and the pure parts (the period's weeks in the school's time zone, the buckets).

Every figure is counted by the database (one grouped query per chart, see
adapters/db/stats.py): requests per week by outcome, the time from a request to its
link (sent automatically, after a review, or as a register task), the age of what waits,
the register tasks' time to done, and each campaign's progress. Decided review items and
done register tasks are deleted after `privacy.retention_days`: the times that need them
cover that window only (the page says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

MINUTE, HOUR, DAY = 60, 3600, 86_400
WEEK = timedelta(weeks=1)

# The ledger's outcomes that are requests (ordinary mail, "ignored", is not), in order.
OUTCOMES = ("answered", "review", "automated", "errors")
OUTCOME_LABELS = {
    "answered": "risposta automatica",
    "review": "messa in revisione",
    "automated": "scartata (posta automatica)",
    "errors": "errore di elaborazione",
}

# How a family got its link: sent at once, after a review, or as a register task done.
LINK_KINDS = ("automatic", "reviewed", "task")
LINK_KIND_LABELS = {
    "automatic": "collegamento automatico",
    "reviewed": "collegamento dopo la revisione",
    "task": "attività nel registro",
}

# Durations: (upper bound in seconds, label); the last bucket has no bound.
DURATION_LIMITS = (MINUTE, HOUR, 8 * HOUR, DAY, 3 * DAY, 7 * DAY)
DURATION_LABELS = (
    "entro 1 minuto",
    "da 1 minuto a 1 ora",
    "da 1 a 8 ore",
    "da 8 ore a 1 giorno",
    "da 1 a 3 giorni",
    "da 3 a 7 giorni",
    "oltre 7 giorni",
)
HALF_WITHIN = (
    "1 minuto",
    "1 ora",
    "8 ore",
    "1 giorno",
    "3 giorni",
    "7 giorni",
    "oltre 7 giorni",
)

# What waits, by age.
WAITING_KINDS = ("review", "task")
WAITING_LABELS = {"review": "richieste da rivedere", "task": "attività da fare nel registro"}
AGE_LIMITS = (DAY, 3 * DAY, 7 * DAY, 14 * DAY)
AGE_LABELS = (
    "meno di 1 giorno",
    "da 1 a 3 giorni",
    "da 3 a 7 giorni",
    "da 1 a 2 settimane",
    "oltre 2 settimane",
)

CAMPAIGN_STATES = ("planned", "queued", "sent", "failed", "bounced", "cancelled", "skipped")
FINISHED_STATES = ("sent", "failed", "bounced", "cancelled", "skipped")


@dataclass(frozen=True)
class Week:
    """A school week, Monday to Sunday in the school's time zone; `begins`/`ends` in UTC."""

    monday: date
    begins: datetime
    ends: datetime

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)


def weeks_until(now: datetime, zone: ZoneInfo, count: int) -> list[Week]:
    """The last `count` weeks, the current one (still running) last."""
    today = now.astimezone(zone).date()
    this_monday = today - timedelta(days=today.weekday())
    mondays = [this_monday - timedelta(weeks=n) for n in range(count - 1, -1, -1)]
    starts = [datetime.combine(m, time(), zone) for m in [*mondays, this_monday + WEEK]]
    return [Week(m, starts[i], starts[i + 1]) for i, m in enumerate(mondays)]


@dataclass(frozen=True)
class CampaignTally:
    name: str
    status: str
    start_at: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(self.counts.get(state, 0) for state in FINISHED_STATES)


@dataclass(frozen=True)
class Waiting:
    """Counts per age bucket (AGE_LIMITS), and the oldest one's time."""

    counts: tuple[int, ...]
    oldest: datetime | None


class StatisticsSource(Protocol):
    """The grouped queries behind the statistics (both databases)."""

    def requests_by_week(self, bounds: Sequence[datetime]) -> dict[tuple[int, str], int]:
        """(index of the week, outcome) -> requests handled in [bounds[i], bounds[i+1])."""

    def link_times(
        self, since: datetime, until: datetime, limits: Sequence[int]
    ) -> dict[tuple[str, int], int]:
        """(link kind, duration bucket) -> links that reached the family in the period."""

    def task_times(self, since: datetime, until: datetime, limits: Sequence[int]) -> dict[int, int]:
        """Duration bucket -> register tasks done in the period, from confirmed to done."""

    def waiting(self, now: datetime, limits: Sequence[int]) -> dict[str, Waiting]:
        """What waits now (review items, open register tasks) by age bucket."""

    def campaigns(self, since: datetime) -> list[CampaignTally]:
        """Campaigns created in the period or still running or paused, oldest first."""


@dataclass(frozen=True)
class Statistics:
    """What the statistics page, its CSV files and `credmail stats` show."""

    weeks: list[Week]
    generated_at: datetime
    requests: dict[tuple[int, str], int]
    link_times: dict[tuple[str, int], int]
    task_times: dict[int, int]
    waiting: dict[str, Waiting]
    campaigns: list[CampaignTally]
    retention_days: int

    def week_total(self, index: int) -> int:
        return sum(self.requests.get((index, outcome), 0) for outcome in OUTCOMES)


def half_within(counts: Sequence[int]) -> str:
    """The bucket holding the median ("metà entro 1 ora"), or "" with nothing counted."""
    total = sum(counts)
    if not total:
        return ""
    running = 0
    for index, count in enumerate(counts):
        running += count
        if 2 * running >= total:
            return HALF_WITHIN[index]
    return HALF_WITHIN[-1]
