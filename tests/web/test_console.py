"""The secretariat's console in process: every page, every permission, sessions, CSRF,
lockout; decisions through the same desks as the CLI (a real SQLite database)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from credmail.bootstrap import App
from credmail.service.desks.staff import SignInRefused
from credmail.service.ports import AuditFilter, RegisterTask, ReviewItem
from tests.fakes import FakeClock
from tests.web.conftest import CLI, PASSWORD, ROOT, ClientFactory, csrf_of, sign_in

pytestmark = pytest.mark.integration  # a real database (SQLite)

GET_PAGES = [
    "/",
    "/revisione",
    "/registro",
    "/registro?classe=2B&dal=2026-01-01&al=2030-12-31&pagina=2",
    "/registro.csv",
    "/revisione?rinviate=si",
    "/rubrica?q=rossi",
    "/posta",
    "/attivita",
    "/attivita.csv",
    "/personale",
    "/rubrica/importa",
]
POSTS = [
    "/esci",
    "/limiti/azzera",
    "/revisione/1/approva",
    "/revisione/1/respingi",
    "/revisione/1/archivia",
    "/revisione/1/rinvia",
    "/registro/1/fatto",
    "/registro/eseguite",
    "/rubrica/persona/G1001/indirizzi/1/rimuovi",
    "/rubrica/importa",
    "/rubrica/importa/conferma",
    "/rubrica/persona/T3001/lingua",
    "/posta/riprova",
    "/personale/aggiungi",
    "/personale/disattiva",
]
HTML_MAIL = (
    b"From: Maria <m.rossi@example.org>\r\nTo: segreteria@istitutostanga.edu.it\r\n"
    b"Subject: Richiesta credenziali\r\nMessage-ID: <html-1@example.org>\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<html><head><style>p{}</style></head><body><p>Buongiorno <b>vorrei</b> le credenziali"
    b'</p><script>alert("x")</script><img src="https://tracker.example/p.png"></body></html>\r\n'
    b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
    b'filename="documento.pdf"\r\n\r\nJVBERi0=\r\n--b--\r\n'
)


def pending(app: App, raw: bytes = HTML_MAIL, sender: str = "m.rossi@example.org") -> int:
    item = ReviewItem(
        id=0,
        created_at=app.clock(),
        status="pending",
        kind="adult",
        sender=sender,
        message_id="<html-1@example.org>",
        subject="Richiesta credenziali",
        reasons=("unauthenticated_sender",),
        raw=raw,
    )
    with app.uow() as uow:
        uow.review.add(item, None)
        item_id = uow.review.pending()[-1].id
        uow.commit()
    return item_id


def test_signed_out_reaches_nothing(console_app: App, client_for: ClientFactory) -> None:
    client = client_for(console_app)
    item_id = pending(console_app)
    for path in [*GET_PAGES, f"/revisione/{item_id}", "/rubrica/persona/T3001"]:
        answer = client.get(ROOT + path)
        assert (answer.status_code, answer.headers["location"]) == (303, f"{ROOT}/accesso"), path
    for path in POSTS:
        answer = client.post(ROOT + path.replace("/1/", f"/{item_id}/"), data={"nota": "x"})
        assert answer.status_code == 303, path
    assert console_app.review.pending()[0].id == item_id  # nothing was decided


def test_sign_in_sets_a_strict_http_only_secure_cookie(
    console_app: App, client_for: ClientFactory
) -> None:
    client = client_for(console_app)
    page = client.get(f"{ROOT}/accesso")
    answer = client.post(
        f"{ROOT}/accesso",
        data={"csrf_token": csrf_of(page.text), "nome": "anna", "password": PASSWORD},
    )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("credmail_console=")
    for flag in ("HttpOnly", "SameSite=strict", "Secure", "Path=/console"):
        assert flag.lower() in cookie.lower(), cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    with console_app.uow() as uow:
        assert token not in str(uow.staff.session(token))  # only the hash is stored


def test_every_page_answers_for_an_administrator(
    console_app: App, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    item_id = pending(console_app)
    for path in [*GET_PAGES, f"/revisione/{item_id}", "/rubrica/persona/T3001"]:
        answer = client.get(ROOT + path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert answer.headers["x-frame-options"] == "DENY"
        assert "script-src 'none'" in answer.headers["content-security-policy"]
    home = client.get(f"{ROOT}/").text
    assert "Cruscotto" in home and "Personale" in home


def test_an_operator_cannot_import_manage_staff_or_reset_the_breaker(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    assert "Personale" not in client.get(f"{ROOT}/").text
    for path in ("/personale", "/rubrica/importa"):
        assert client.get(ROOT + path).status_code == 403, path
    for path in (
        "/rubrica/importa",
        "/rubrica/importa/conferma",
        "/limiti/azzera",
        "/personale/aggiungi",
        "/personale/disattiva",
    ):
        data = {"csrf_token": csrf, "nome": "olga", "ruolo": "amministratore"}
        data["password"] = PASSWORD + "!"
        assert client.post(ROOT + path, data=data).status_code == 403, path
    assert [a.name for a in console_app.desks.staff.listing()] == ["anna", "olga"]
    assert all(a.active for a in console_app.desks.staff.listing())


def test_a_post_without_the_csrf_token_is_refused(
    console_app: App, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    item_id = pending(console_app)
    for data in ({}, {"csrf_token": "x" + csrf}):
        answer = client.post(f"{ROOT}/revisione/{item_id}/archivia", data=data)
        assert answer.status_code == 403
    assert len(console_app.review.pending()) == 1
    page = client.get(f"{ROOT}/accesso")
    assert client.post(f"{ROOT}/accesso", data={"nome": "anna"}).status_code == 403
    assert page.status_code == 200


def test_lockout_after_five_failures(console_app: App, client_for: ClientFactory) -> None:
    client = client_for(console_app)
    csrf = csrf_of(client.get(f"{ROOT}/accesso").text)
    for _ in range(5):
        wrong = {"csrf_token": csrf, "nome": "olga", "password": "sbagliata-123456"}
        answer = client.post(f"{ROOT}/accesso", data=wrong)
        assert answer.status_code == 401 and "non validi" in answer.text
    right = {"csrf_token": csrf, "nome": "olga", "password": PASSWORD}
    answer = client.post(f"{ROOT}/accesso", data=right)
    assert answer.status_code == 429 and "riprovare tra 30 secondi" in answer.text
    failures = console_app.desks.audit.listing(AuditFilter(action="sign_in.failed"))[1]
    assert failures == 5


def test_the_session_ends_after_30_idle_minutes_and_on_sign_out(
    console_app: App, clock: FakeClock, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    clock.now += timedelta(minutes=29)
    assert client.get(f"{ROOT}/revisione").status_code == 200
    clock.now += timedelta(minutes=31)
    assert client.get(f"{ROOT}/revisione").status_code == 303
    csrf = sign_in(client, "anna")
    assert client.post(f"{ROOT}/esci", data={"csrf_token": csrf}).status_code == 303
    assert client.get(f"{ROOT}/").status_code == 303


def test_an_item_shows_html_mail_as_text_and_lists_attachments(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, _ = operator
    page = client.get(f"{ROOT}/revisione/{pending(console_app)}").text
    assert "Buongiorno vorrei le credenziali" in page
    assert "<b>vorrei" not in page and "alert(" not in page and "tracker.example" not in page
    assert "documento.pdf" in page and "application/pdf" in page
    assert "non è autenticato" in page


def test_approve_reject_discard_and_the_loser_of_a_race(
    console_app: App, operator: tuple[TestClient, str], admin: tuple[TestClient, str]
) -> None:
    olga, olga_csrf = operator
    anna, anna_csrf = admin
    sender = "g.esposito@example.org"
    first, second, third = (pending(console_app, sender=sender) for _ in range(3))
    queue = olga.get(f"{ROOT}/revisione").text
    assert "Il mittente non è autenticato (DMARC/DKIM)" in queue and f"#{third}" in queue
    answer = olga.post(
        f"{ROOT}/revisione/{first}/approva",
        data={"csrf_token": olga_csrf, "persona": "T3001", "indirizzo": sender},
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("fatto=approvata")
    lost = anna.post(f"{ROOT}/revisione/{first}/archivia", data={"csrf_token": anna_csrf})
    assert lost.status_code == 409 and "Già deciso da olga (console)" in lost.text
    olga.post(
        f"{ROOT}/revisione/{second}/respingi",
        data={"csrf_token": olga_csrf, "nota": "non è lui", "avvisa": "si"},
    )
    anna.post(f"{ROOT}/revisione/{third}/archivia", data={"csrf_token": anna_csrf})
    assert console_app.review.pending() == []
    templates = sorted(line.template for line in console_app.desks.outbox.listing())
    assert templates == ["link_adult", "review_rejected"]
    entries, _ = console_app.desks.audit.listing(AuditFilter(item=f"richiesta {second}"))
    assert [(e.actor, e.action, e.source) for e in entries] == [("olga", "review.rejected", "web")]
    log = anna.get(f"{ROOT}/attivita?chi=olga").text
    assert "Richiesta approvata" in log and "Richiesta respinta" in log


def test_queue_filters(console_app: App, operator: tuple[TestClient, str]) -> None:
    client, _ = operator
    pending(console_app)
    assert "1 richiesta in attesa" in client.get(f"{ROOT}/revisione").text
    none = client.get(f"{ROOT}/revisione?motivo=ambiguous_person").text
    assert "0 richieste in attesa" in none
    old = client.get(f"{ROOT}/revisione?eta=1").text
    assert "0 richieste in attesa" in old
    assert "1 richiesta" in client.get(f"{ROOT}/revisione?tipo=adult").text


def test_a_register_task_is_marked_done_with_a_note(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    now = console_app.clock()
    task = RegisterTask(
        0, "T3001", "adult", "teacher", "Gennaro", "Esposito", "g.esposito@example.org", now, now
    )
    with console_app.uow() as uow:
        task_id = uow.tasks.add(task, "sel1")
        uow.commit()
    assert "Gennaro Esposito" in client.get(f"{ROOT}/registro").text
    answer = client.post(
        f"{ROOT}/registro/{task_id}/fatto", data={"csrf_token": csrf, "nota": "reinviate"}
    )
    assert answer.status_code == 303
    (done,) = console_app.desks.tasks.listing(None)
    assert (done.status, done.done_by, done.note) == ("done", "olga (web)", "reinviate")
    (entry,), _ = console_app.desks.audit.listing(AuditFilter(action="task.done"))
    assert entry.actor == "olga"


def test_directory_search_guardians_and_language(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    found = client.get(f"{ROOT}/rubrica?q=esposito").text
    assert "T3001" in found
    by_address = client.get(f"{ROOT}/rubrica?q=g.esposito@example").text
    assert "T3001" in by_address
    person = console_app.desks.directory.people()
    guardian = next(p for p in person if p.students)
    page = client.get(f"{ROOT}/rubrica/persona/{guardian.username}").text
    assert "Studenti collegati" in page and guardian.students[0] in page
    answer = client.post(
        f"{ROOT}/rubrica/persona/{guardian.username}/lingua",
        data={"csrf_token": csrf, "lingua": "RO"},
    )
    assert answer.status_code == 303
    assert console_app.desks.directory.person(guardian.username).language == "ro"
    bad = client.post(
        f"{ROOT}/rubrica/persona/{guardian.username}/lingua",
        data={"csrf_token": csrf, "lingua": "rom"},
    )
    assert bad.status_code == 409 and "ISO 639-1" in bad.text


CSV = (
    "role,username,first_name,last_name,birth_date,emails,students,class\n"
    "teacher,T9001,Nuova,Docente,,nuova.docente@example.org,,\n"
)


def test_import_shows_a_preview_then_writes_on_confirm(
    console_app: App, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    preview = client.post(
        f"{ROOT}/rubrica/importa",
        data={"csrf_token": csrf},
        files={"file": ("people.csv", CSV.encode(), "text/csv")},
    )
    assert preview.status_code == 200, preview.text
    assert "persone aggiunte: <strong>1</strong>" in preview.text
    assert console_app.desks.directory.find("T9001") == []  # the preview wrote nothing
    payload = re.search(r'name="dati" value="([^"]+)"', preview.text)
    assert payload
    confirm = client.post(
        f"{ROOT}/rubrica/importa/conferma", data={"csrf_token": csrf, "dati": payload.group(1)}
    )
    assert confirm.status_code == 303
    assert [p.username for p in console_app.desks.directory.find("T9001")] == ["T9001"]
    (entry,), _ = console_app.desks.audit.listing(AuditFilter(action="directory.import"))
    assert entry.actor == "anna" and "aggiunte 1," in (entry.detail or "")
    broken = client.post(
        f"{ROOT}/rubrica/importa",
        data={"csrf_token": csrf},
        files={"file": ("people.csv", b"username,role\nX,capo\n", "text/csv")},
    )
    assert broken.status_code == 400 and "non è stato importato" in broken.text


def test_outbox_lists_failed_mail_and_retries_it(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    item_id = pending(console_app, sender="g.esposito@example.org")
    console_app.review.approve(item_id, "T3001", CLI)
    (line,) = console_app.desks.outbox.listing()
    with console_app.uow() as uow:
        uow.outbox.mark_failed(line.id, "550 mailbox unavailable")
        uow.commit()
    page = client.get(f"{ROOT}/posta?stato=failed").text
    assert "550 mailbox unavailable" in page and "Non consegnata" in page
    answer = client.post(f"{ROOT}/posta/riprova", data={"csrf_token": csrf, "messaggio": line.id})
    assert answer.status_code == 303
    assert console_app.desks.outbox.listing()[0].status == "pending"


def test_audit_log_filters_and_csv_export(console_app: App, admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    csv_text = client.get(f"{ROOT}/attivita.csv?azione=sign_in").text
    lines = csv_text.strip().splitlines()
    assert lines[0] == "id,quando,chi,da,azione,oggetto,dettagli"
    assert len(lines) == 2 and ",anna,web,sign_in,anna," in lines[1]
    assert "<td>Accesso</td>" in client.get(f"{ROOT}/attivita?azione=sign_in").text
    everything = client.get(f"{ROOT}/attivita").text
    assert "3 voci." in everything  # two accounts created, one sign-in


def test_staff_management_by_an_administrator(
    console_app: App, admin: tuple[TestClient, str], client_for: ClientFactory
) -> None:
    client, csrf = admin
    other = client_for(console_app, "203.0.113.9")
    sign_in(other, "olga")
    client.post(
        f"{ROOT}/personale/aggiungi",
        data={"csrf_token": csrf, "nome": "piero", "ruolo": "operatore", "password": PASSWORD},
    )
    client.post(f"{ROOT}/personale/disattiva", data={"csrf_token": csrf, "nome": "olga"})
    states = {a.name: a.active for a in console_app.desks.staff.listing()}
    assert states == {"anna": True, "olga": False, "piero": True}
    assert other.get(f"{ROOT}/").status_code == 303  # the disabled account is signed out


def test_healthz_and_metrics(console_app: App, client_for: ClientFactory) -> None:
    client = client_for(console_app)
    health = client.get("/healthz")
    assert health.status_code == 503  # the daemon never synced: no heartbeat
    assert client.get("/livez").text == "ok"  # the web process itself is up (its probes)
    assert health.json()["database"] is True and health.json()["heartbeat_fresh"] is False
    with console_app.uow() as uow:
        uow.checkpoints.set("INBOX", 1, 0, console_app.clock())
        uow.commit()
    assert client.get("/healthz").status_code == 200
    pending(console_app)
    with pytest.raises(SignInRefused):
        console_app.desks.staff.sign_in("olga", "sbagliata-000000", "", "10.0.0.1")
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "credmail_review_queue_size 1.0" in metrics.text
    assert 'credmail_outbox{state="failed"} 0.0' in metrics.text
    assert "credmail_last_sync_age_seconds 0.0" in metrics.text
    assert "credmail_sign_in_failures 1.0" in metrics.text
    assert "credmail_requests{" not in metrics.text  # nothing handled yet
