"""Limits, tokens, privacy and status desks against the fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from credmail.core.values import MailRef
from credmail.service.desks import DeskError
from credmail.service.links import TokenLinkIssuer
from credmail.service.ports import OutgoingMail, ReviewItem
from tests.service.conftest import CLERK, Office


def test_limits_reset_closes_the_breaker_and_restarts_the_count(office: Office) -> None:
    assert office.limits.show().tripped is False
    with office.uow() as uow:
        uow.breaker.trip(office.clock(), "cap")
        uow.commit()
    assert office.limits.show().tripped is True
    office.clock.now += timedelta(minutes=5)
    assert office.limits.reset(CLERK).was_tripped is True
    assert office.limits.show().tripped is False
    assert office.uow.store.breaker[1] == office.clock()
    assert office.limits.reset(CLERK).was_tripped is False


def _link(office: Office, username: str = "T3001") -> str:
    """Approve a request and mint its token, as delivery does; returns the link."""
    item = ReviewItem(
        0, office.clock(), "pending", "adult", "g.esposito@example.org", "<r@x>", "s", (), None
    )
    with office.uow() as uow:
        uow.review.add(item, None)
        item_id = uow.review.pending()[-1].id
        uow.commit()
    office.review.approve(item_id, username, CLERK)
    issuer = office.review.mailer.links
    assert isinstance(issuer, TokenLinkIssuer)
    with office.uow() as uow:
        (selector,) = uow.store.tokens
        minted = issuer.mint(uow, selector, office.clock())
        uow.commit()
    assert minted is not None
    return minted.url


def test_token_check_follows_the_link_through_its_life(office: Office) -> None:
    link = _link(office)
    status = office.tokens.check(link)
    assert (status.found, status.valid, status.state, status.username) == (
        True,
        True,
        "valid",
        "T3001",
    )
    assert office.tokens.check(link[:-3] + "xyz").found is False
    office.clock.now += timedelta(minutes=61)
    assert office.tokens.check(link).state == "expired"


def test_a_token_goes_stale_when_the_directory_changes(office: Office) -> None:
    link = _link(office)
    with office.uow() as uow:
        person = uow.store.people["T3001"]
        uow.store.people["T3001"] = type(person)(
            person.username,
            person.role,
            person.first_name,
            "Altro",
            person.birth_date,
            person.emails,
        )
        uow.commit()
    status = office.tokens.check(link)
    assert (status.valid, status.state) == (False, "stale")


def test_privacy_forget_erases_what_show_lists_and_folds_the_wal(office: Office) -> None:
    _link(office)
    ref = MailRef("INBOX", 1, "7", 10, b"")
    now = office.clock()
    with office.uow() as uow:
        ledger_id = uow.ledger.add(ref, "<q@x>", "review", ("unknown_sender",), None, now)
        item = ReviewItem(
            0, now, "pending", "adult", "g.esposito@example.org", "<q@x>", "s", (), b"raw"
        )
        uow.review.add(item, ledger_id)
        mine = OutgoingMail("<a@x>", "s@x", "g.esposito@example.org", b"x")
        uow.outbox.add(mine, "acknowledge_unknown", now, ledger_id=ledger_id)
        other = OutgoingMail("<n@x>", "s@x", "Elena.Neri@example.org", b"x")
        uow.outbox.add(other, "rate_limited", now)
        uow.commit()
    held = office.privacy.show(" G.Esposito@Example.org ").as_json()
    assert held["address"] == "g.esposito@example.org"
    assert [p["username"] for p in held["directory"]] == ["T3001"]
    assert (len(held["review_items"]), len(held["outbox"]), len(held["link_tokens"])) == (2, 2, 1)
    erased = office.privacy.forget("g.esposito@example.org", CLERK).as_json()["erased"]
    assert erased == {
        "review_items": 1,
        "near_misses": 0,  # tested on real databases (tests/integration/test_near_miss_flow.py)
        "outbox": 1,
        "link_tokens": 1,
        "register_tasks": 0,
        "remembered_addresses": 0,
        "ledger_message_ids": 1,
    }
    assert office.erasures == ["checkpoint"]
    after = office.privacy.show("g.esposito@example.org").as_json()
    assert after["review_items"] == after["outbox"] == after["link_tokens"] == []
    assert len(after["directory"]) == 1  # the directory stays
    assert office.uow.store.ledger[ledger_id][1] is None  # the Message-ID is gone
    assert len(office.privacy.show("elena.neri@example.org").as_json()["outbox"]) == 1


def test_privacy_refuses_what_is_not_an_address(office: Office) -> None:
    with pytest.raises(DeskError):
        office.privacy.show("not an address")
    with pytest.raises(DeskError):
        office.privacy.forget("", CLERK)
    assert office.erasures == []


def _synced(office: Office, ago: timedelta) -> None:
    with office.uow() as uow:
        uow.checkpoints.set("INBOX", 1, 10, office.clock() - ago)
        uow.commit()


def test_status_is_unhealthy_until_a_recent_sync(office: Office) -> None:
    report = office.status.report()
    assert report.healthy is False and report.as_json()["last_sync"] is None
    _synced(office, timedelta(minutes=9))
    assert office.status.report().healthy is True
    office.clock.now += timedelta(minutes=2)
    report = office.status.report()
    assert report.healthy is False
    assert report.as_json()["last_sync_age_seconds"] == 660.0


def test_status_is_unhealthy_while_mail_waits_too_long_or_delivery_is_paused(
    office: Office,
) -> None:
    with office.uow() as uow:
        uow.outbox.add(OutgoingMail("<m@x>", "s@x", "a@x.org", b"x"), "link_adult", office.clock())
        uow.commit()
    office.clock.now += timedelta(minutes=59)
    _synced(office, timedelta(0))
    assert office.status.report().healthy is True
    office.clock.now += timedelta(minutes=2)
    _synced(office, timedelta(0))
    report = office.status.report()
    assert report.healthy is False and report.as_json()["delivery_ok"] is False
    with office.uow() as uow:
        uow.outbox.mark_sent(next(iter(uow.store.outbox)), office.clock())
        uow.outbox.pause(office.clock(), "535 auth")
        uow.commit()
    report = office.status.report()
    assert report.healthy is False and report.as_json()["delivery_paused"] == "535 auth"
    assert report.as_json()["outbox"] == {"sent": 1}
