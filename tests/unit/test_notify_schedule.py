"""When the digest is due (school days, closed days, the latest slot that has come), and
the [notify] settings refused with one line naming the key."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from credmail.config import ConfigError, load_settings
from credmail.core.schedule import due_slot, next_slot
from credmail.service.notify.digest import italian_age

WEEKDAYS = frozenset(range(5))
TIMES = ("07:45", "13:00")
IDENTITY = {
    "CREDMAIL_SMTP__FROM_ADDRESS": "segreteria@istitutostanga.edu.it",
    "CREDMAIL_REPLIES__SCHOOL_NAME": "Istituto Stanga",
    "CREDMAIL_LINKS__BASE_URL": "https://registro.istitutostanga.edu.it",
}


def never(day: date) -> bool:
    return False


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        (datetime(2026, 12, 8, 7, 44), None),  # too early
        (datetime(2026, 12, 8, 7, 45), "2026-12-08 07:45"),
        (datetime(2026, 12, 8, 12, 59), "2026-12-08 07:45"),  # late, the same day
        (datetime(2026, 12, 8, 23, 0), "2026-12-08 13:00"),  # the latest covers 07:45
        (datetime(2026, 12, 12, 9, 0), None),  # Saturday
    ],
)
def test_the_latest_slot_of_a_school_day_is_due(now: datetime, slot: str | None) -> None:
    assert due_slot(now, TIMES, WEEKDAYS, never) == slot


def test_closed_days_have_no_slot_and_the_next_one_skips_them() -> None:
    settings = load_settings(
        None, {**IDENTITY, "CREDMAIL_SCHOOL__CLOSED_DAYS": '["2026-12-23..2027-01-06"]'}
    )
    closed = settings.school.closed_on
    assert due_slot(datetime(2026, 12, 28, 9), TIMES, WEEKDAYS, closed) is None
    assert next_slot(datetime(2026, 12, 22, 14), TIMES, WEEKDAYS, closed) == datetime(
        2027, 1, 7, 7, 45
    )
    assert next_slot(datetime(2026, 12, 8, 8), TIMES, WEEKDAYS, never) == datetime(
        2026, 12, 8, 13, 0
    )


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 minuti"),
        (61, "1 minuto"),
        (3600, "1 ora"),
        (47 * 3600, "47 ore"),
        (49 * 3600, "2 giorni"),
    ],
)
def test_ages_read_in_italian(seconds: float, words: str) -> None:
    assert italian_age(seconds) == words


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "NOTIFY__DIGEST_AT",
            '["7:45"]',
            "notify.digest_at: '7:45' is not a time HH:MM",
        ),
        ("NOTIFY__DIGEST_DAYS", '["lun"]', "notify.digest_days: 'lun' is not one of"),
        ("NOTIFY__STAFF", '["segreteria"]', "notify.staff: 'segreteria'"),
        ("SCHOOL__CLOSED_DAYS", '["24/12/2026"]', "school.closed_days: '24/12/2026'"),
        ("SCHOOL__CLOSED_DAYS", '["2027-01-06..2026-12-23"]', "ends before it starts"),
    ],
)
def test_bad_notify_settings_are_one_line_naming_the_key(
    key: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, {**IDENTITY, f"CREDMAIL_{key}": value})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
