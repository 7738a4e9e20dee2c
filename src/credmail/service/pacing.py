"""Outbound pacing: space sends to the provider's limits, pause the whole outbox on a
quota reply, and let replies to requests overtake other mail.

Counts come from the outbox's own `sent_at` times (persisted: a restart does not reset
the day); the pause lives in the database so `credmail status` can show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

DAY = timedelta(days=1)

# Replies a person is waiting for; everything else (acknowledgements, notices, any future
# bulk) queues behind them.
URGENT_TEMPLATES = (
    "link_adult",
    "link_student",
    "minor_procedure",
    "link_already_sent",
    "review_rejected",
)

# Bulk mail (the September campaign) queues behind everything else, and counts neither
# against the per-address reply limits nor the requests' breaker (it has its own cap).
BULK_TEMPLATES = ("campaign_new_student",)

# Mail for the school's own people (the secretariat's digest, the sysadmin's alerts):
# never counted against a family's limits nor the requests' breaker.
STAFF_TEMPLATES = ("staff_digest", "admin_alert")
UNCOUNTED_TEMPLATES = (*BULK_TEMPLATES, *STAFF_TEMPLATES)

# Provider limits per mailbox: (per minute, per day).
PRESETS: dict[str, tuple[int | None, int | None]] = {
    "microsoft": (30, 10_000),
    "google": (None, 2_000),
}

# Quota replies: the text that identifies them, and whether the window is a day.
QUOTA_REPLIES: tuple[tuple[str, bool], ...] = (
    ("SubmissionQuotaExceeded", True),  # Microsoft 554 5.2.0
    ("5.1.90", True),  # Microsoft: daily recipient limit
    ("5.4.5", True),  # Google: daily user sending limit exceeded
    ("4.5.127", False),  # Microsoft: excessive message rate
    ("421 4.7.0", False),  # Google: try again later (rate)
    ("4.7.28", False),  # Google: rate limited
)


def quota_window(error: str) -> bool | None:
    """None: not a quota reply; True: a daily quota; False: a rate limit."""
    for marker, daily in QUOTA_REPLIES:
        if marker in error:
            return daily
    return None


@dataclass(frozen=True)
class PacingLimits:
    min_interval_seconds: float = 0.0  # from max_per_second / max_per_minute
    per_day: int | None = None
    daily_pause_seconds: float = 86_400
    rate_pause_seconds: float = 60

    @classmethod
    def build(
        cls,
        provider: str | None,
        per_second: float | None,
        per_minute: int | None,
        per_day: int | None,
        daily_pause_seconds: float = 86_400,
        rate_pause_seconds: float = 60,
    ) -> PacingLimits:
        """The stricter of the configured values and the provider's preset."""
        preset_minute, preset_day = PRESETS.get(provider or "", (None, None))
        minute = _lowest(per_minute, preset_minute)
        intervals = [60 / minute if minute else 0.0, 1 / per_second if per_second else 0.0]
        return cls(
            max(intervals), _lowest(per_day, preset_day), daily_pause_seconds, rate_pause_seconds
        )

    @property
    def limited(self) -> bool:
        return self.min_interval_seconds > 0 or self.per_day is not None


def _lowest(*values: int | None) -> int | None:
    given = [value for value in values if value]
    return min(given) if given else None


class PacingStore(Protocol):
    def last_sent(self) -> datetime | None: ...
    def nth_latest_sent(self, n: int) -> datetime | None:
        """When the n-th most recent mail left (1 = the last one), or None."""

    def paused(self) -> tuple[datetime, str] | None: ...
    def pause(self, until: datetime, reason: str) -> None: ...


class Pacer:
    def __init__(self, limits: PacingLimits, store: PacingStore) -> None:
        self.limits, self.store = limits, store

    def next_send_at(self, now: datetime) -> datetime:
        """The earliest moment the next mail may go (`now` when it may go at once)."""
        moments = [now]
        paused = self.store.paused()
        if paused is not None:
            moments.append(paused[0])
        if self.limits.min_interval_seconds:
            last = self.store.last_sent()
            if last is not None:
                moments.append(last + timedelta(seconds=self.limits.min_interval_seconds))
        if self.limits.per_day is not None:  # the day's quota frees up a day after its first
            oldest_counted = self.store.nth_latest_sent(self.limits.per_day)
            if oldest_counted is not None and oldest_counted > now - DAY:
                moments.append(oldest_counted + DAY)
        return max(moments)

    def refused(self, error: str, now: datetime) -> datetime | None:
        """A quota reply pauses the whole outbox; returns until when (None: not a quota)."""
        daily = quota_window(error)
        if daily is None:
            return None
        seconds = self.limits.daily_pause_seconds if daily else self.limits.rate_pause_seconds
        until = now + timedelta(seconds=seconds)
        self.store.pause(until, error[:200])
        return until
