"""Issue 28.3 against the fakes: the decisions that queue mail ask, in their own unit of
work, to wake the daemon's outbox; the others do not. The poll nudge wakes it once per
change in what is due."""

from __future__ import annotations

from datetime import timedelta

import pytest

from credmail.service.outbox.nudge_poll import OutboxPoll
from credmail.service.ports import OutgoingMail
from credmail.service.review import ReviewError
from tests.service.conftest import CLERK, Office
from tests.service.test_review_desk import pending


def test_an_approval_wakes_the_daemon_when_it_commits(office: Office) -> None:
    office.review.approve(pending(office, "g.esposito@example.org"), "T3001", CLERK)
    assert office.uow.nudges == 1


def test_a_rejection_wakes_it_only_when_a_notice_goes(office: Office) -> None:
    office.review.reject(pending(office, "g.esposito@example.org"), "no", False, CLERK)
    office.review.discard(pending(office, "g.esposito@example.org"), CLERK)
    assert office.uow.nudges == 0
    office.review.reject(pending(office, "g.esposito@example.org"), "no", True, CLERK)
    assert office.uow.nudges == 1


def test_a_refused_decision_wakes_nothing(office: Office) -> None:
    item_id = pending(office, "g.esposito@example.org")
    with pytest.raises(ReviewError):
        office.review.approve(item_id, "NOBODY", CLERK)
    assert office.uow.nudges == 0


def test_outbox_retry_wakes_the_daemon(office: Office) -> None:
    office.outbox.retry(None, CLERK)
    assert office.uow.nudges == 1


def queue(office: Office, n: int) -> int:
    with office.uow() as uow:
        uow.outbox.add(
            OutgoingMail(f"<m{n}@x>", "s@x", f"r{n}@x", b"x"), "link_adult", office.clock()
        )
        uow.commit()
        return max(uow.outbox.due(office.clock(), 100), key=lambda e: e.id).id


def test_the_poll_wakes_once_per_change_in_what_is_due(office: Office) -> None:
    poll = OutboxPoll(office.uow, office.clock, 0.001)
    poll.open()
    assert poll.wait(1.0) is False  # nothing due
    first = queue(office, 1)
    assert poll.wait(1.0) is True
    assert poll.wait(1.0) is False  # the same mail, still due (e.g. delivery paused)
    queue(office, 2)
    assert poll.wait(1.0) is True
    with office.uow() as uow:
        uow.outbox.mark_retry(first, "421", office.clock() + timedelta(minutes=5))
        uow.commit()
    poll.wait(1.0)  # less is due: a wake for nothing is allowed (one cheap drain)
    assert poll.wait(1.0) is False
    office.clock.now += timedelta(minutes=5)
    assert poll.wait(1.0) is True  # the retry came due
