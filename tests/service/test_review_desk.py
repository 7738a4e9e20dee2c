"""The review desk's rules against the fakes: who may receive a link, one decision each."""

from __future__ import annotations

import pytest

from credmail.service.desks import Actor, ReviewDesk, ReviewError
from credmail.service.ports import ReviewItem
from credmail.service.review import KindMismatch
from tests.service.conftest import CLERK, Office


def pending(office: Office, sender: str | None, kind: str = "adult") -> int:
    item = ReviewItem(
        id=0,
        created_at=office.clock(),
        status="pending",
        kind=kind,
        sender=sender,
        message_id="<req@example.org>",
        subject="Richiesta credenziali",
        reasons=("unknown_sender",),
        raw=b"From: x\r\n\r\nciao\r\n",
    )
    with office.uow() as uow:
        uow.review.add(item, None)
        item_id = uow.review.pending()[-1].id
        uow.commit()
    return item_id


def test_approve_queues_the_link_and_records_who_decided(office: Office) -> None:
    item_id = pending(office, "g.esposito@example.org")
    approval = office.review.approve(item_id, "T3001", CLERK)
    assert (approval.template, approval.to, approval.revoked) == (
        "link_adult",
        "g.esposito@example.org",
        (),
    )
    store = office.uow.store
    item = store.review[item_id]
    assert (item.status, item.decided_by) == ("approved", "segreteria (cli)")
    (mail,) = store.outbox.values()
    assert (mail.template, mail.recipient, mail.status) == (
        "link_adult",
        "g.esposito@example.org",
        "pending",
    )
    assert [t.username for t in store.tokens.values()] == ["T3001"]


def test_a_second_approval_revokes_the_first_link(office: Office) -> None:
    office.review.approve(pending(office, "g.esposito@example.org"), "T3001", CLERK)
    again = office.review.approve(pending(office, "g.esposito@example.org"), "T3001", CLERK)
    assert again.revoked == ("g.esposito@example.org",)
    states = sorted(t.revoked_at is None for t in office.uow.store.tokens.values())
    assert states == [False, True]


def test_the_wrong_kind_is_refused_and_nothing_is_written(office: Office) -> None:
    item_id = pending(office, "g.esposito@example.org", kind="student")
    commits = office.uow.commits
    with pytest.raises(KindMismatch) as refused:
        office.review.approve(item_id, "T3001", CLERK)
    assert refused.value.gets == "adult" and "--" not in str(refused.value)  # no CLI flag
    assert office.uow.commits == commits
    assert office.uow.store.review[item_id].status == "pending"
    assert not office.uow.store.outbox


def test_a_minors_own_address_never_gets_the_link(office: Office) -> None:
    item_id = pending(office, "sara.verdi@studenti.example.org", kind="student")
    with pytest.raises(ReviewError, match="dei genitori/tutori"):
        office.review.approve(item_id, "S2004", CLERK)
    with pytest.raises(ReviewError, match="ammessi: nessuno"):
        office.review.approve(item_id, "S2004", CLERK, "sara.verdi@studenti.example.org")
    assert not office.uow.store.outbox


def test_a_minors_link_goes_to_the_guardian(office: Office) -> None:
    item_id = pending(office, "mario.rossi@example.org", kind="student")
    approval = office.review.approve(item_id, "S2001", CLERK)
    assert (approval.template, approval.to) == ("link_student", "mario.rossi@example.org")


def test_an_address_not_on_file_is_refused(office: Office) -> None:
    item_id = pending(office, "g.esposito@example.org")
    with pytest.raises(ReviewError, match="non è un indirizzo registrato"):
        office.review.approve(item_id, "T3001", CLERK, "attacker@evil.example")


def test_a_decided_request_cannot_be_decided_again(office: Office) -> None:
    item_id = pending(office, "g.esposito@example.org")
    office.review.discard(item_id, CLERK)
    assert office.uow.store.review[item_id].status == "discarded"
    assert not office.uow.store.outbox
    with pytest.raises(ReviewError, match="già stata decisa"):
        office.review.approve(item_id, "T3001", CLERK)
    with pytest.raises(ReviewError, match="già stata decisa"):
        office.review.reject(item_id, "no", True, CLERK)


def test_reject_with_notify_tells_the_sender_and_keeps_the_note(office: Office) -> None:
    item_id = pending(office, "g.esposito@example.org")
    sent = office.review.reject(item_id, "richiesta non valida", True, CLERK, extra="per Rossi")
    assert sent == "review_rejected"
    (mail,) = office.uow.store.outbox.values()
    assert (mail.template, mail.recipient) == ("review_rejected", "g.esposito@example.org")
    assert b"richiesta non valida" in (mail.raw or b"")
    assert office.uow.store.review[item_id].note == "richiesta non valida (per Rossi)"


def test_reject_cannot_notify_a_request_without_a_sender(office: Office) -> None:
    item_id = pending(office, None)
    with pytest.raises(ReviewError, match="mittente valido"):
        office.review.reject(item_id, "no", True, CLERK)
    assert office.review.reject(item_id, "no", False, CLERK) == "niente"


def test_only_the_configured_staff_may_decide(office: Office) -> None:
    desk = ReviewDesk(
        office.uow, office.review.mailer, office.clock, office.review.timezone, ("segreteria",)
    )
    item_id = pending(office, "g.esposito@example.org")
    with pytest.raises(ReviewError, match="personale autorizzato"):
        desk.discard(item_id, Actor("intruso", "web"))
    desk.discard(item_id, CLERK)
    assert office.uow.store.review[item_id].decided_by == "segreteria (cli)"
