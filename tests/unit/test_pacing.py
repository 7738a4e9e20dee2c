"""Pacing rules: presets, the stricter value wins, quota replies, the next turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from credmail.service.pacing import Pacer, PacingLimits, quota_window

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Store:
    def __init__(self, sent: list[datetime]) -> None:
        self.sent = sorted(sent)
        self.pause_row: tuple[datetime, str] | None = None

    def last_sent(self) -> datetime | None:
        return self.sent[-1] if self.sent else None

    def nth_latest_sent(self, n: int) -> datetime | None:
        return self.sent[-n] if len(self.sent) >= n else None

    def paused(self) -> tuple[datetime, str] | None:
        return self.pause_row

    def pause(self, until: datetime, reason: str) -> None:
        self.pause_row = (until, reason)


def test_provider_presets_and_lower_values() -> None:
    microsoft = PacingLimits.build("microsoft", None, None, None)
    assert (microsoft.min_interval_seconds, microsoft.per_day) == (2.0, 10_000)
    assert PacingLimits.build("google", None, None, None).per_day == 2_000
    lower = PacingLimits.build("microsoft", None, 10, 500)
    assert (lower.min_interval_seconds, lower.per_day) == (6.0, 500)
    higher = PacingLimits.build("microsoft", None, 100, 50_000)  # never above the preset
    assert (higher.min_interval_seconds, higher.per_day) == (2.0, 10_000)
    assert not PacingLimits.build(None, None, None, None).limited
    assert PacingLimits.build(None, 4, None, None).min_interval_seconds == 0.25


@pytest.mark.parametrize(
    ("reply", "daily"),
    [
        ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", True),
        ("550 5.1.90 Your message can't be sent because you've reached your daily limit", True),
        ("550 5.4.5 Daily user sending limit exceeded", True),
        ("452 4.5.127 Excessive message rate from sender", False),
        ("421 4.7.0 Try again later, closing connection", False),
        ("421 4.7.28 Our system has detected an unusual rate", False),
        ("550 5.1.1 User unknown", None),
        ("451 4.3.0 Temporary failure", None),
    ],
)
def test_quota_replies(reply: str, daily: bool | None) -> None:
    assert quota_window(reply) is daily


def test_next_turn_respects_spacing_the_day_and_a_pause() -> None:
    store = Store([NOW - timedelta(seconds=1)])
    pacer = Pacer(PacingLimits(min_interval_seconds=2), store)
    assert pacer.next_send_at(NOW) == NOW + timedelta(seconds=1)
    day = [NOW - timedelta(hours=23, minutes=59 - i) for i in range(3)]
    pacer = Pacer(PacingLimits(per_day=3), Store(day))
    assert pacer.next_send_at(NOW) == day[0] + timedelta(days=1)
    assert Pacer(PacingLimits(per_day=4), Store(day)).next_send_at(NOW) == NOW
    store = Store([])
    pacer = Pacer(PacingLimits(rate_pause_seconds=60), store)
    assert pacer.refused("550 5.1.1 unknown", NOW) is None and store.pause_row is None
    assert pacer.refused("421 4.7.28 slow down", NOW) == NOW + timedelta(seconds=60)
    assert pacer.next_send_at(NOW) == NOW + timedelta(seconds=60)
