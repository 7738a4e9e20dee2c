"""Defer and remember in the console (issue 28, item 4), on SQLite and PostgreSQL: a
deferred request leaves the queue and comes back on its date; an address added to a
person on approval is on file, survives a re-import and is removed from the person's
page; CSRF and `review.staff` refuse as for the other decisions."""

from __future__ import annotations

import html
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from credmail.adapters.db.directory_import import import_records
from credmail.adapters.db.models import ReviewRow
from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.core.addresses import normalize_address
from credmail.samples import directory_csv
from credmail.service.desks import Actor
from credmail.service.directory_csv import read_directory
from credmail.service.ports import AuditFilter
from tests.fakes import FakeClock
from tests.support.provider_mail import pec_envelope
from tests.support.wiring import make_app
from tests.web.conftest import (
    CLI,
    PASSWORD,
    ROOT,
    ClientFactory,
    hold,
    sign_in,
    web_env,
)
from tests.web.test_console_italian import problems

pytestmark = pytest.mark.integration

ROME = ZoneInfo("Europe/Rome")
NEW_ADDRESS = "mamma.rossi@nuovo.example.net"


def today(clock: FakeClock) -> date:
    return clock().astimezone(ROME).date()


def test_a_deferred_request_leaves_the_queue_and_comes_back_on_its_date(
    office: App, clock: FakeClock, olga: tuple[TestClient, str]
) -> None:
    client, csrf = olga
    item = hold(office, "sconosciuto@example.net", "adult", ("unknown_sender",))
    back = today(clock) + timedelta(days=3)
    answer = client.post(
        f"{ROOT}/revisione/{item}/rinvia",
        data={"csrf_token": csrf, "data": back.isoformat(), "nota": "richiamare"},
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("fatto=rinviata")
    queue = client.get(f"{ROOT}/revisione").text
    assert f"#{item}" not in queue and "1 richiesta rinviata" in queue
    assert office.review.pending() == [] and office.desks.deferrals.due() == []
    listed = client.get(f"{ROOT}/revisione?rinviate=si").text
    assert f"#{item}" in listed and "Torna il" in listed
    assert office.desks.deferrals.counts().deferred == 1
    assert "1 richiesta rinviata" in client.get(f"{ROOT}/").text  # the Cruscotto says it
    for path in ("/revisione?rinviate=si", f"/revisione/{item}", "/"):
        assert list(problems(client.get(ROOT + path).text)) == [], path
    entries, _ = office.desks.audit.listing(AuditFilter(action="review.deferred"))
    assert [(e.actor, e.item) for e in entries] == [("olga", f"richiesta {item}")]
    assert "richiamare" in (entries[0].detail or "")

    clock.now = datetime.combine(back, time(0, 0, 1), ROME)  # the day it comes back
    assert [i.id for i in office.desks.deferrals.due()] == [item]
    assert [i.id for i in office.desks.deferrals.waiting()] == [item]
    sign_in(client, "olga")  # days later: a new session
    queue = client.get(f"{ROOT}/revisione").text
    assert f"#{item}" in queue and "ora di nuovo in coda" in queue
    assert office.desks.status.report().details["review_deferred"] == 0


def test_a_past_date_or_a_bad_one_is_refused_in_one_line(
    office: App, clock: FakeClock, olga: tuple[TestClient, str]
) -> None:
    client, csrf = olga
    item = hold(office, "sconosciuto@example.net", "adult", ("unknown_sender",))
    for day, said in (
        (today(clock).isoformat(), "successiva a oggi"),
        ("31/02/2027", "non valida"),
        ((today(clock) + timedelta(days=400)).strftime("%d/%m/%Y"), "al massimo di un anno"),
    ):
        answer = client.post(
            f"{ROOT}/revisione/{item}/rinvia", data={"csrf_token": csrf, "data": day}
        )
        assert answer.status_code == 409 and said in answer.text
    italian = (today(clock) + timedelta(days=1)).strftime("%d/%m/%Y")
    office.desks.deferrals.defer(item, italian, CLI)
    assert office.review.pending() == []


def test_defer_and_remove_need_the_csrf_token_and_a_reviewer(
    db_url: str, clock: FakeClock, tmp_path: Path, client_for: ClientFactory
) -> None:
    env = web_env(db_url, review__staff='["anna"]')
    app = make_app(load_settings(None, environ=env), clock=clock)
    app.desks.staff.add("olga", "operatore", PASSWORD, CLI)
    item = hold(app, "sconosciuto@example.net", "adult", ("unknown_sender",))
    client = client_for(app)
    csrf = sign_in(client, "olga")
    tomorrow = (today(clock) + timedelta(days=1)).isoformat()
    forged = client.post(f"{ROOT}/revisione/{item}/rinvia", data={"data": tomorrow})
    assert forged.status_code == 403
    refused = client.post(
        f"{ROOT}/revisione/{item}/rinvia", data={"csrf_token": csrf, "data": tomorrow}
    )
    assert refused.status_code == 409 and "non è tra il personale autorizzato" in refused.text
    app.review.approve(item, "G1001", Actor("anna", "cli"), confirmed=True, remember=True)
    (entry,) = app.desks.remembered.listing("G1001")
    path = f"{ROOT}/rubrica/persona/G1001/indirizzi/{entry.id}/rimuovi"
    assert client.post(path, data={}).status_code == 403
    assert client.post(path, data={"csrf_token": csrf}).status_code == 409
    assert [e.address for e in app.desks.remembered.listing("G1001")] == [entry.address]
    assert [i.id for i in app.review.pending()] == []


def test_remember_an_address_on_approval_keep_it_on_reimport_and_remove_it(
    office: App, olga: tuple[TestClient, str]
) -> None:
    client, csrf = olga
    item = hold(office, NEW_ADDRESS, "student", ("unknown_sender",))
    page = client.get(f"{ROOT}/revisione/{item}").text
    assert "Approva per un'altra persona" in page and "Rinvia" in page
    proposal = client.get(f"{ROOT}/revisione/{item}/ricorda?persona=S2001").text
    assert "Mario Rossi" in proposal and f"Aggiungere {NEW_ADDRESS}" in proposal
    assert list(problems(proposal)) == []
    answer = client.post(
        f"{ROOT}/revisione/{item}/approva",
        data={
            "csrf_token": csrf,
            "persona": "S2001",
            "tipo": "student",
            "conferma": "si",
            "ricorda": "si",
            "genitore": "G1001",
        },
    )
    assert answer.headers["location"].endswith("fatto=approvata_ricordata"), answer.text
    (mail,) = [line for line in office.desks.outbox.listing() if line.template == "link_student"]
    assert mail.recipient == NEW_ADDRESS
    reimport(office)  # the register's file again: the address stays
    with office.uow(read_only=True) as uow:
        (mario,) = uow.directory.people_with_address(normalize_address(NEW_ADDRESS))
    assert mario.username == "G1001" and NEW_ADDRESS in mario.emails
    person = client.get(f"{ROOT}/rubrica/persona/G1001").text
    assert "Indirizzi aggiunti dalla segreteria" in person and f"Rimuovi {NEW_ADDRESS}" in person
    assert list(problems(person)) == []
    (entry,) = office.desks.remembered.listing("G1001")
    removed = client.post(
        f"{ROOT}/rubrica/persona/G1001/indirizzi/{entry.id}/rimuovi", data={"csrf_token": csrf}
    )
    assert removed.headers["location"].endswith("fatto=indirizzo_rimosso")
    with office.uow(read_only=True) as uow:
        assert uow.directory.people_with_address(normalize_address(NEW_ADDRESS)) == []
    actions = [
        (e.action, e.item) for e in office.desks.audit.listing(AuditFilter(item="persona G1001"))[0]
    ]
    assert sorted(actions) == [
        ("directory.remember", "persona G1001"),
        ("directory.unremember", "persona G1001"),
    ]


def test_a_minor_with_two_guardians_needs_the_guardian_named(office: App) -> None:
    item = hold(office, NEW_ADDRESS, "student", ("unknown_sender",))
    with pytest.raises(Exception, match="indicare a quale genitore/tutore"):
        office.review.approve(item, "S2002", CLI, confirmed=True, remember=True)
    approval = office.review.approve(
        item, "S2002", CLI, confirmed=True, remember=True, remember_for="G1003"
    )
    assert (approval.to, approval.remembered_for) == (NEW_ADDRESS, "G1003")
    assert office.desks.remembered.listing("G1002") == []


def test_an_address_on_file_for_someone_else_is_never_added(
    office: App, olga: tuple[TestClient, str]
) -> None:
    """A minor writing from her own address (on file for her): approving for her may send
    a link only to her guardians' addresses; her address is never added to a guardian."""
    client, _csrf = olga
    sara = "sara.verdi@studenti.example.org"
    item = hold(office, sara, "student", ("unknown_sender",))
    proposal = html.unescape(client.get(f"{ROOT}/revisione/{item}/ricorda?persona=S2001").text)
    assert "già in rubrica per un'altra persona" in proposal
    assert 'name="ricorda"' not in proposal  # not offered
    with pytest.raises(Exception, match="già in rubrica per un'altra persona"):
        office.review.approve(item, "S2001", CLI, confirmed=True, remember=True)
    assert office.desks.remembered.listing("G1001") == []
    with office.uow(read_only=True) as uow:
        (owner,) = uow.directory.people_with_address(normalize_address(sara))
    assert owner.username == "S2004"


def test_a_pec_gateway_address_is_never_added(office: App) -> None:
    """Through PEC the From is the provider's gateway, shared by everyone who writes."""
    item = hold(office, "posta-certificata@pec.aruba.it", "adult", ("unknown_sender",))
    with office.uow() as uow:
        uow.session.execute(
            update(ReviewRow).where(ReviewRow.id == item).values(raw=pec_envelope())
        )
        uow.commit()
    with pytest.raises(Exception, match="arrivata via PEC"):
        office.review.approve(item, "G1001", CLI, confirmed=True, remember=True)
    assert office.desks.remembered.listing("G1001") == []
    assert office.desks.remembered.proposal(item, "G1001").refusal is not None


def reimport(app: App) -> None:
    with app.uow() as uow:
        records = read_directory(directory_csv(date.today()))
        import_records(uow.session, records, prune=True)
        uow.commit()
