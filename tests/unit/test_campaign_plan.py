"""The September campaign's plan as a pure computation (core.campaign), its duration, and
the settings that drive it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from credmail.config import ConfigError, load_settings
from credmail.core.addresses import address_key
from credmail.core.campaign import Warn, build_plan, estimate_duration
from credmail.core.values import Person, Role
from credmail.service.campaign_mail import made_up_codes, no_codes_refusal
from credmail.service.register_rows import is_pec
from tests.support.wiring import IDENTITY

TODAY = date(2026, 9, 1)


def student(username: str, age: int = 14) -> Person:
    return Person(
        username, Role.STUDENT, "N" + username, "C", date(2026 - age, 1, 1), (), (), None, True
    )


def guardian(username: str, emails: tuple[str, ...], *children: str) -> Person:
    return Person(username, Role.GUARDIAN, "G" + username, "C", None, emails, children)


def test_one_mail_per_address_listing_each_new_child() -> None:
    students = [student("S1"), student("S2"), student("S3")]
    guardians = [
        guardian("G1", ("mamma@example.org",), "S1", "S2", "S9"),  # S9: not new
        guardian("G2", ("papa@example.org", "Mamma@Example.org"), "S1", "S2"),
        guardian("G3", ("altro@example.org",), "S3"),
    ]
    plan = build_plan(students, guardians, TODAY, address_key)
    mails = {m.address_key: (m.students, m.guardians) for m in plan.mails}
    assert mails == {
        "mamma@example.org": (("S1", "S2"), ("G1", "G2")),  # the same address, once
        "papa@example.org": (("S1", "S2"), ("G2",)),
        "altro@example.org": (("S3",), ("G3",)),
    }
    assert plan.links == 5 and plan.reached_students == 3 and plan.warnings == ()


def test_warnings_name_what_cannot_be_sent_or_needs_a_look() -> None:
    students = [student("S1"), student("S2"), student("S3", age=18), student("S4"), student("S5")]
    guardians = [
        guardian("G1", ("casa@example.org",), "S1"),
        guardian("G2", (), "S1"),  # no address: the other guardian still reaches S1
        guardian("G4", (), "S4"),  # nobody reaches S4
        guardian("G5", ("casa@example.org",), "S5"),  # another family on the same address
        guardian("G3", ("g3@example.org",), "S3"),
    ]
    plan = build_plan(students, guardians, TODAY, address_key)
    found = {(w.kind, w.subject) for w in plan.warnings}
    assert found == {
        (Warn.NO_GUARDIAN, "S2"),
        (Warn.ADULT, "S3"),
        (Warn.UNREACHABLE, "S4"),
        (Warn.GUARDIAN_NO_ADDRESS, "G2"),
        (Warn.GUARDIAN_NO_ADDRESS, "G4"),
        (Warn.SHARED_ADDRESS, "casa@example.org"),
    }
    assert [(m.address_key, m.students) for m in plan.mails] == [("casa@example.org", ("S1", "S5"))]


def test_two_parents_on_one_address_are_one_family() -> None:
    students = [student("S1")]
    guardians = [
        guardian("G1", ("casa@example.org",), "S1"),
        guardian("G2", ("casa@example.org",), "S1"),
    ]
    plan = build_plan(students, guardians, TODAY, address_key)
    assert plan.warnings == () and len(plan.mails) == 1


def test_only_restricts_the_plan_to_given_pairs() -> None:
    students = [student("S1"), student("S2")]
    guardians = [guardian("G1", ("a@example.org",), "S1", "S2")]
    plan = build_plan(students, guardians, TODAY, address_key).only({("a@example.org", "S2")})
    assert [m.students for m in plan.mails] == [("S2",)]


def test_pec_addresses_are_skipped_with_a_warning_when_the_caller_says_so() -> None:
    students = [student("S1"), student("S2")]
    guardians = [
        guardian("G1", ("casa@example.org", "mamma@pec.it"), "S1"),
        guardian("G2", ("papa@legalmail.it",), "S2"),  # S2: reachable only at a PEC box
    ]
    plan = build_plan(students, guardians, TODAY, address_key, pec=is_pec)
    assert [(m.address, m.students) for m in plan.mails] == [("casa@example.org", ("S1",))]
    assert [(m.address, m.students, m.guardians) for m in plan.skipped] == [
        ("mamma@pec.it", ("S1",), ("G1",)),
        ("papa@legalmail.it", ("S2",), ("G2",)),
    ]
    assert {(w.kind, w.subject, w.detail) for w in plan.warnings} == {
        (Warn.PEC_ADDRESS, "mamma@pec.it", "G1"),
        (Warn.PEC_ADDRESS, "papa@legalmail.it", "G2"),
        (Warn.UNREACHABLE, "S2", "PEC addresses only"),
    }
    assert plan.reached_students == 1 and plan.links == 1
    everyone = build_plan(students, guardians, TODAY, address_key)  # the school sends to PEC
    assert len(everyone.mails) == 3 and everyone.skipped == () and everyone.warnings == ()


def test_made_up_usernames_are_counted_and_refuse_a_start_only_when_all_are() -> None:
    students = [student("alunno-5256302"), student("alunno-cf-0a1b2c3d4e"), student("S1")]
    guardians = [
        guardian("G1", ("a@example.org",), "alunno-5256302", "alunno-cf-0a1b2c3d4e"),
        guardian("G2", ("b@pec.it",), "S1"),  # S1 is not mailed: its code does not count
    ]
    plan = build_plan(students, guardians, TODAY, address_key, pec=is_pec)
    assert made_up_codes(plan) == ["alunno-5256302", "alunno-cf-0a1b2c3d4e"]
    refusal = no_codes_refusal(plan)
    assert refusal is not None and refusal.startswith("none of the 2 students")
    assert "--without-register-codes" in refusal
    mixed = build_plan(students, guardians, TODAY, address_key)  # S1 mailed with its code
    assert len(made_up_codes(mixed)) == 2 and no_codes_refusal(mixed) is None
    empty = build_plan([], [], TODAY, address_key)
    assert made_up_codes(empty) == [] and no_codes_refusal(empty) is None


@pytest.mark.parametrize(
    ("mails", "interval", "per_day", "expected"),
    [
        (0, 2.0, None, timedelta(0)),
        (100, 2.0, None, timedelta(seconds=200)),
        (100, 2.0, 1000, timedelta(seconds=200)),
        (2500, 0.0, 1000, timedelta(days=2)),
        (2000, 1.0, 1000, timedelta(days=1, seconds=1000)),
    ],
)
def test_estimated_duration(
    mails: int, interval: float, per_day: int | None, expected: timedelta
) -> None:
    assert estimate_duration(mails, interval, per_day) == expected


def test_the_campaign_ttl_is_not_capped_by_the_request_links_maximum() -> None:
    env = {
        **IDENTITY,
        "CREDMAIL_LINKS__MAX_TTL_MINUTES": "60",
        "CREDMAIL_CAMPAIGN__LINK_TTL_DAYS": "14",
    }
    settings = load_settings(None, environ=env)
    assert settings.campaign.link_ttl_days == 14
    assert load_settings(None, environ=IDENTITY).campaign.link_ttl_days == 14  # the default
    with pytest.raises(ConfigError, match=r"campaign\.link_ttl_days"):
        load_settings(None, environ={**IDENTITY, "CREDMAIL_CAMPAIGN__LINK_TTL_DAYS": "0"})
    with pytest.raises(ConfigError, match=r"campaign\.daily_cpa: unknown key"):
        load_settings(None, environ={**IDENTITY, "CREDMAIL_CAMPAIGN__DAILY_CPA": "5"})
    assert settings.campaign.send_to_pec is False  # PEC boxes are skipped unless asked
    willing = {**IDENTITY, "CREDMAIL_CAMPAIGN__SEND_TO_PEC": "true"}
    assert load_settings(None, environ=willing).campaign.send_to_pec is True
