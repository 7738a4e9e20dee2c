"""Register tasks in bulk in the console (issue 28, item 7), on SQLite and PostgreSQL:
a family's children together, filters by class and date, pages of families, many
marked done at once (one audit entry each, one mail per address), the CSV export for
the register's bulk send (formula-safe); CSRF refused. With real aiosmtpd and Dovecot:
each address receives one mail naming every child."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from starlette.testclient import TestClient

from credmail.bootstrap import App
from credmail.entrypoints.daemon import run_once
from credmail.service.ports import AuditFilter, RegisterTask, TaskFilter
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, make_app, server_settings
from tests.web.conftest import CLI, ROOT, ClientFactory
from tests.web.test_console_italian import problems

pytestmark = pytest.mark.integration

BIANCHI = "famiglia.bianchi@example.org"
# (username, role, first, last, address): Giulia (1A) and Marco (3C) share their family's
# address; Luca (2B) is Mario Rossi's; the teacher has her own; one name looks like a formula.
PEOPLE = (
    ("S2002", "student", "Giulia", "Bianchi", BIANCHI),
    ("S2003", "student", "Marco", "Bianchi", BIANCHI),
    ("S2001", "student", "Luca", "Rossi", "mario.rossi@example.org"),
    ("T3001", "teacher", "Giovanna", '=HYPERLINK("x")', "g.esposito@example.org"),
)


def add_tasks(app: App, confirmed: datetime) -> dict[str, int]:
    ids = {}
    with app.uow() as uow:
        for n, (username, role, first, last, address) in enumerate(PEOPLE):
            task = RegisterTask(0, username, "x", role, first, last, address, confirmed, confirmed)
            ids[username] = uow.tasks.add(task, f"sel{n}")
        uow.commit()
    return ids


def test_the_page_groups_families_and_filters_by_class_and_date(
    office: App, olga: tuple[TestClient, str]
) -> None:
    client, _ = olga
    ids = add_tasks(office, office.clock())
    page = client.get(f"{ROOT}/registro").text
    assert f"Famiglia all'indirizzo {BIANCHI} (2 attività)" in page
    assert "4 attività da fare, 3 famiglie" in page and list(problems(page)) == []
    giulia, marco = page.index(f'value="{ids["S2002"]}"'), page.index(f'value="{ids["S2003"]}"')
    family = page.index(f"indirizzo {BIANCHI}")
    assert family < giulia < marco  # the family's children under its heading
    only = client.get(f"{ROOT}/registro?classe=1A").text
    assert "Giulia Bianchi" in only and "Marco Bianchi" not in only and "Luca Rossi" not in only
    today = office.clock().date()
    later = (today + timedelta(days=2)).isoformat()
    assert (
        "Nessuna attività da fare con questi filtri"
        in client.get(f"{ROOT}/registro?dal={later}").text
    )
    assert "4 attività" in client.get(f"{ROOT}/registro?al={today.isoformat()}").text
    listing = office.desks.worklist.page(TaskFilter(), 1, size=2)
    assert (listing.pages, listing.total_families, len(listing.families)) == (2, 3, 2)


def test_many_done_at_once_one_audit_entry_each_one_mail_per_address(
    office: App, olga: tuple[TestClient, str]
) -> None:
    client, csrf = olga
    ids = add_tasks(office, office.clock())
    office.desks.tasks.done(ids["S2001"], CLI)  # done meanwhile at the other door
    chosen = [ids["S2002"], ids["S2003"], ids["T3001"], ids["S2001"]]
    forged = client.post(f"{ROOT}/registro/eseguite", data={"attivita": chosen})
    assert forged.status_code == 403 and office.desks.tasks.listing() != []
    answer = client.post(
        f"{ROOT}/registro/eseguite",
        data={"csrf_token": csrf, "attivita": chosen, "quali": "selezionate", "nota": "lotto 1"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("fatto=eseguite&n=3&e=2&s=1")
    said = client.get(answer.headers["location"]).text
    assert "Attività segnate come eseguite: 3" in said and "1 non erano più da fare" in said
    assert office.desks.tasks.listing() == []
    done = {t.username: t for t in office.desks.tasks.listing(None)}
    assert (done["S2002"].done_at, done["S2002"].done_by) == (office.clock(), "olga (web)")
    mails = sorted(
        line.recipient or ""
        for line in office.desks.outbox.listing()
        if line.template == "task_done"
    )
    assert mails == sorted([BIANCHI, "g.esposito@example.org", "mario.rossi@example.org"])
    entries, _ = office.desks.audit.listing(AuditFilter(action="task.done", actor="olga"))
    assert sorted(e.item or "" for e in entries) == sorted(
        f"attività {ids[u]}" for u in ("S2002", "S2003", "T3001")
    )
    assert all("nota interna: lotto 1" in (e.detail or "") for e in entries)


def test_every_filtered_task_at_once_and_the_csv_for_the_register(
    office: App, olga: tuple[TestClient, str], client_for: ClientFactory
) -> None:
    client, csrf = olga
    add_tasks(office, office.clock())
    exported = client.get(f"{ROOT}/registro.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    text = exported.content.decode("utf-8")
    assert text.startswith("\ufeffcodice;cognome;nome;classe;ruolo;email;attività;confermata")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))[1:]
    assert [(r[0], r[3]) for r in rows] == [
        ("S2002", "1A"),
        ("S2001", "2B"),
        ("S2003", "3C"),
        ("T3001", ""),
    ]
    assert rows[3][1] == '\'=HYPERLINK("x")' and rows[0][5] == BIANCHI
    only = client.get(f"{ROOT}/registro.csv?classe=3C").content.decode("utf-8")
    assert only.count("\r\n") == 2 and "S2003" in only
    signed_out = client_for(office).get(f"{ROOT}/registro.csv")
    assert signed_out.status_code == 303 and signed_out.headers["location"].endswith("/accesso")

    answer = client.post(
        f"{ROOT}/registro/eseguite",
        data={"csrf_token": csrf, "quali": "filtrate", "classe": "1A"},
    )
    assert answer.headers["location"].endswith("n=1&e=1&s=0")
    assert sorted(t.username for t in office.desks.tasks.listing()) == ["S2001", "S2003", "T3001"]
    assert client.get(f"{ROOT}/registro.csv").content.decode("utf-8").count("\r\n") == 4


def test_each_address_receives_one_mail_naming_every_child(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    ids = add_tasks(app, app.clock())
    app.desks.worklist.done_many(list(ids.values()), CLI)
    run_once(app)
    to = sorted(rcpt for _from, rcpts, _raw in smtp.handler.messages for rcpt in rcpts)
    assert to == sorted([BIANCHI, "g.esposito@example.org", "mario.rossi@example.org"])
    (family,) = [m for m in smtp.handler.parsed() if m["To"] == BIANCHI]
    text = body_text(family)
    assert "Giulia Bianchi" in text and "Marco Bianchi" in text and "S2003" in text
    assert "anche le richieste delle credenziali" in text
