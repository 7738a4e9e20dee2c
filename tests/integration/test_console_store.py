"""The console's storage on SQLite and PostgreSQL: staff, sessions, lockout state, the
audit log, the queue filters, the directory search, the ledger tally, and a decision
race between two units of work."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from credmail.config import load_settings
from credmail.core.values import MailRef
from credmail.service.desks import Actor
from credmail.service.desks.staff import SignInRefused
from credmail.service.ports import AuditFilter, ReviewFilter, ReviewItem
from credmail.service.review import AlreadyDecided
from tests.support.wiring import IDENTITY, make_app

pytestmark = pytest.mark.integration

CLI = Actor("root", "cli")
PASSWORD = "una password lunga"


def app_on(db_url: str):  # type: ignore[no-untyped-def]
    return make_app(load_settings(None, environ={**IDENTITY, "CREDMAIL_DATABASE__URL": db_url}))


def held(app, reasons: tuple[str, ...], kind: str = "adult", days_ago: int = 0) -> int:  # type: ignore[no-untyped-def]
    item = ReviewItem(
        id=0,
        created_at=app.clock() - timedelta(days=days_ago),
        status="pending",
        kind=kind,
        sender="g.esposito@example.org",
        message_id="<m@example.org>",
        subject="Richiesta credenziali",
        reasons=reasons,
        raw=b"From: g.esposito@example.org\r\n\r\nciao\r\n",
    )
    with app.uow() as uow:
        uow.review.add(item, None)
        item_id: int = uow.review.pending()[-1].id
        uow.commit()
    return item_id


def test_staff_sessions_lockout_and_audit(db_url: str) -> None:
    app = app_on(db_url)
    app.desks.staff.add("olga", "operatore", PASSWORD, CLI)
    signed = app.desks.staff.sign_in("olga", PASSWORD, "", "10.0.0.1")
    assert app.desks.staff.session(signed.token).name == "olga"
    for n in range(5):
        with pytest.raises(SignInRefused, match="non validi"):
            app.desks.staff.sign_in("olga", f"sbagliata-{n:08}", "", "10.0.0.2")
    with pytest.raises(SignInRefused, match="riprovare"):
        app.desks.staff.sign_in("olga", PASSWORD, "", "10.0.0.3")
    app.desks.staff.disable("olga", CLI)
    assert app.desks.staff.session(signed.token) is None
    entries, total = app.desks.audit.listing(AuditFilter(action="sign_in.failed"))
    assert total == 5 and entries[0].item == "olga"
    everything = app.desks.audit.listing(AuditFilter())
    assert everything[1] == len(everything[0]) == 8  # add, sign-in, 5 failures, disable
    text = "".join(app.desks.audit.export_csv(AuditFilter(actor="root")))
    assert "staff.add" in text and "staff.disable" in text


def test_queue_filters_by_reason_kind_and_age(db_url: str) -> None:
    app = app_on(db_url)
    old = held(app, ("unknown_sender",), days_ago=5)
    new = held(app, ("ambiguous_person", "spam_flagged"), kind="student")
    by_reason, total = app.review.queue(ReviewFilter(reason="spam_flagged"))
    assert ([i.id for i in by_reason], total) == ([new], 1)
    assert by_reason[0].raw is None and by_reason[0].reasons == ("ambiguous_person", "spam_flagged")
    assert [i.id for i in app.review.queue(ReviewFilter(kind="adult"))[0]] == [old]
    aged = ReviewFilter(older_than=app.clock() - timedelta(days=1))
    assert [i.id for i in app.review.queue(aged)[0]] == [old]
    page, total = app.review.queue(ReviewFilter(), limit=1, offset=1)
    assert ([i.id for i in page], total) == ([new], 2)


def test_directory_search_and_language(db_url: str) -> None:
    app = app_on(db_url)
    assert [p.username for p in app.desks.directory.find("giovanna esp")] == ["T3001"]
    assert [p.username for p in app.desks.directory.find("ESPOSITO giovanna")] == ["T3001"]
    assert [p.username for p in app.desks.directory.find("g.esposito@")] == ["T3001"]
    assert app.desks.directory.find("%") == []
    bianchi = {p.username: p for p in app.desks.directory.find("bianchi")}
    assert bianchi["G1002"].students == ("S2002", "S2003")
    assert bianchi["S2002"].guardians == ("G1002", "G1003")
    app.desks.directory.set_language("G1002", "ro", CLI)
    assert app.desks.directory.person("G1002").language == "ro"


def test_ledger_tally_by_outcome_and_reason(db_url: str) -> None:
    app = app_on(db_url)
    now = app.clock()
    with app.uow() as uow:
        for key, outcome, reasons in (
            ("1", "review", ["unknown_sender"]),
            ("2", "review", ["unknown_sender"]),
            ("3", "answered", []),
        ):
            ref = MailRef("INBOX", 1, key, 10, b"")
            uow.ledger.add(ref, f"<{key}@x>", outcome, reasons, None, now)
        uow.commit()
    figures = app.desks.observe.figures()
    assert figures.requests == {("review", "unknown_sender"): 2, ("answered", ""): 1}


def test_two_deciders_at_once_one_wins(db_url: str) -> None:
    """Two threads decide the same item: exactly one decision and one audit entry."""
    app = app_on(db_url)
    item_id = held(app, ("unknown_sender",))
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(name: str) -> None:
        start.wait()
        try:
            app.review.discard(item_id, Actor(name, "web", "operatore"))
            outcomes.append("won")
        except AlreadyDecided as exc:
            outcomes.append(f"lost to {exc.by}")

    threads = [threading.Thread(target=decide, args=(n,)) for n in ("olga", "piero")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[1] == "won" and sorted(outcomes)[0].startswith("lost to ")
    _, total = app.desks.audit.listing(AuditFilter(action="review.discarded"))
    assert total == 1
