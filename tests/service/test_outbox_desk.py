"""The outbox desk: a failed message with its body is queued again, pending mail sent now."""

from __future__ import annotations

from datetime import timedelta

import pytest

from credmail.service.desks import DeskError
from credmail.service.ports import OutgoingMail
from tests.service.conftest import CLERK, Office


def queued(office: Office, raw: bytes | None = b"body") -> int:
    mail = OutgoingMail("<m@x>", "segreteria@scuola.example.org", "a@example.org", raw or b"")
    with office.uow() as uow:
        uow.outbox.add(mail, "link_adult", office.clock())
        entry_id: int = max(uow.outbox.s.outbox)  # type: ignore[attr-defined]
        if raw is None:
            uow.outbox._set(entry_id, raw=None)  # type: ignore[attr-defined]
        uow.commit()
    return entry_id


def test_a_failed_message_is_queued_again(office: Office) -> None:
    entry_id = queued(office)
    with office.uow() as uow:
        uow.outbox.mark_failed(entry_id, "550 no such user")
        uow.commit()
    office.clock.now += timedelta(hours=2)
    done = office.outbox.retry(entry_id, CLERK)
    assert (done.resumed, done.requeued) == (False, entry_id)
    entry = office.uow.store.outbox[entry_id]
    assert (entry.status, entry.attempts, entry.next_attempt_at) == (
        "pending",
        0,
        office.clock(),
    )


@pytest.mark.parametrize("state", ["sent", "failed-without-body", "missing"])
def test_anything_else_is_refused_and_the_pause_stays(office: Office, state: str) -> None:
    entry_id = queued(office, None if state == "failed-without-body" else b"body")
    with office.uow() as uow:
        if state == "sent":
            uow.outbox.mark_sent(entry_id, office.clock())
        if state == "failed-without-body":
            uow.outbox.mark_failed(entry_id, "550")
        uow.outbox.pause(office.clock(), "535 auth")
        uow.commit()
    target = entry_id + 100 if state == "missing" else entry_id
    with pytest.raises(DeskError, match=f"outbox message {target} is neither pending nor failed"):
        office.outbox.retry(target, CLERK)
    assert office.uow.store.delivery.paused_at is not None


def test_retry_without_an_id_resumes_a_paused_delivery(office: Office) -> None:
    assert office.outbox.retry(None, CLERK).resumed is False
    with office.uow() as uow:
        uow.outbox.pause(office.clock(), "535 auth")
        uow.commit()
    assert office.outbox.retry(None, CLERK).resumed is True
    assert office.uow.store.delivery.paused_at is None


def test_listing_shows_the_next_attempt_only_while_pending(office: Office) -> None:
    pending, sent = queued(office), queued(office)
    with office.uow() as uow:
        uow.outbox.mark_sent(sent, office.clock())
        uow.commit()
    lines = {line.id: line for line in office.outbox.listing()}
    assert lines[pending].next_attempt_at == office.clock()
    assert lines[sent].next_attempt_at is None
    assert lines[sent].as_json()["sent_at"] == office.clock().isoformat()
    assert [line.id for line in office.outbox.listing("sent")] == [sent]


def _waiting(office: Office) -> int:
    """A pending message backing off after a transient SMTP failure."""
    entry_id = queued(office)
    with office.uow() as uow:
        uow.outbox.mark_retry(entry_id, "421 try later", office.clock() + timedelta(hours=1))
        uow.commit()
    return entry_id


def test_retry_makes_every_pending_message_due_now(office: Office) -> None:
    first, second = _waiting(office), _waiting(office)
    done = office.outbox.retry(None, CLERK)
    assert (done.requeued, done.due_now) == (None, 2)
    for entry_id in (first, second):
        entry = office.uow.store.outbox[entry_id]
        assert (entry.status, entry.next_attempt_at) == ("pending", office.clock())


def test_retry_of_one_pending_message_makes_it_due_now(office: Office) -> None:
    entry_id, other = _waiting(office), _waiting(office)
    assert office.outbox.retry(entry_id, CLERK).due_now == 1
    assert office.uow.store.outbox[entry_id].next_attempt_at == office.clock()
    assert office.uow.store.outbox[other].next_attempt_at == office.clock() + timedelta(hours=1)
