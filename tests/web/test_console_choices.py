"""What the console offers on a request and on a register task (a real SQLite database):
only the approvals that fit a request, an override as a second page that says what it
does, no command-line flag in any answer; a task's internal note never mailed, and a
message to the family shown in its mail before it is sent."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from credmail.bootstrap import App
from credmail.service.ports import AuditFilter
from tests.web.conftest import ROOT, hold, register_task

pytestmark = pytest.mark.integration  # a real database (SQLite)

SHARED = "famiglia.bianchi@example.org"  # Anna and Paolo Bianchi, guardians of S2002, S2003


def approvals(html: str) -> list[str]:
    """The approve buttons of a request's page."""
    pressed = (" ".join(b.split()) for b in re.findall(r"<button[^>]*>(.*?)</button>", html))
    return [b for b in pressed if b.startswith("Approva")]


def sent(app: App) -> list[tuple[str, str | None]]:
    return [(line.template, line.recipient) for line in app.desks.outbox.listing()]


def test_a_student_request_offers_the_students_and_the_guardian_only_as_a_second_step(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    item_id = hold(console_app, SHARED, "student", ("ambiguous_student",))
    page = client.get(f"{ROOT}/revisione/{item_id}").text
    assert approvals(page) == [
        "Approva per lo studente Giulia Bianchi",
        "Approva per lo studente Marco Bianchi",
    ]
    assert "--kind" not in page and "--conferma" not in page
    assert "Altre possibilità (da confermare)" in page
    second = f"/revisione/{item_id}/eccezione?persona=G1002"
    assert f'href="{ROOT}{second}"' in page

    direct = client.post(
        f"{ROOT}/revisione/{item_id}/approva",
        data={"csrf_token": csrf, "persona": "G1002", "indirizzo": SHARED},
    )
    assert direct.status_code == 409 and "--" not in direct.text  # no CLI flag leaks
    assert "La richiesta chiede credenziali di uno studente, ma G1002 riceverebbe" in direct.text
    assert sent(console_app) == []

    confirm = client.get(ROOT + second)
    assert confirm.status_code == 200
    assert "riceverà il collegamento per le proprie credenziali personali" in confirm.text
    assert "Anna Bianchi è genitore/tutore" in confirm.text
    assert 'name="tipo" value="adult"' in confirm.text
    answer = client.post(
        f"{ROOT}/revisione/{item_id}/approva",
        data={"csrf_token": csrf, "persona": "G1002", "indirizzo": SHARED, "tipo": "adult"},
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("fatto=approvata")
    assert sent(console_app) == [("link_adult", SHARED)]


def test_a_student_is_approved_with_the_guardians_address(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    item_id = hold(console_app, SHARED, "student", ("ambiguous_student",))
    page = client.get(f"{ROOT}/revisione/{item_id}").text
    assert f"andrà a <strong>{SHARED}</strong> (genitore/tutore)" in page
    answer = client.post(
        f"{ROOT}/revisione/{item_id}/approva",
        data={"csrf_token": csrf, "persona": "S2002", "indirizzo": SHARED},
    )
    assert answer.status_code == 303
    assert sent(console_app) == [("link_student", SHARED)]
    (entry,), _ = console_app.desks.audit.listing(AuditFilter(action="review.approved"))
    assert entry.detail == "collegamento per le credenziali di uno studente minorenne (S2002)"


def test_an_adult_students_link_is_an_override_that_says_where_it_goes(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, _ = operator
    item_id = hold(console_app, "elena.neri@example.org", "student", ("adult_student",))
    page = client.get(f"{ROOT}/revisione/{item_id}").text
    assert approvals(page) == []
    assert "Nessuna persona collegata al mittente riceverebbe ciò che la richiesta chiede" in page
    confirm = client.get(f"{ROOT}/revisione/{item_id}/eccezione?persona=S2005").text
    assert "Davide Neri è maggiorenne" in confirm
    assert (
        "al proprio indirizzo (davide.neri@example.org), non a Elena Neri che ha scritto" in confirm
    )


def test_a_minor_without_a_guardians_address_cannot_be_approved(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, _ = operator
    item_id = hold(console_app, "sara.verdi@studenti.example.org", "student", ("not_guardian",))
    page = client.get(f"{ROOT}/revisione/{item_id}").text
    assert "Nessun indirizzo registrato dei genitori/tutori" in page
    assert approvals(page) == []
    refused = client.get(f"{ROOT}/revisione/{item_id}/eccezione?persona=S2004")
    assert refused.status_code == 404 and "Scelta non disponibile" in refused.text


def test_a_request_of_unknown_kind_offers_each_person_with_the_link_it_gets(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    item_id = hold(console_app, SHARED, "unknown", ("undecided",))
    page = client.get(f"{ROOT}/revisione/{item_id}").text
    assert approvals(page) == [
        "Approva per Anna Bianchi",
        "Approva per Paolo Bianchi",
        "Approva per lo studente Giulia Bianchi",
        "Approva per lo studente Marco Bianchi",
    ]
    answer = client.post(
        f"{ROOT}/revisione/{item_id}/approva",
        data={"csrf_token": csrf, "persona": "S2003", "indirizzo": SHARED, "tipo": "student"},
    )
    assert answer.status_code == 303
    assert sent(console_app) == [("link_student", SHARED)]


def test_a_tasks_internal_note_is_never_mailed_and_its_message_is_shown_first(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    task_id = register_task(console_app, "sel-choices")
    page = client.get(f"{ROOT}/registro").text
    assert "Nota interna (facoltativa, non viene inviata)" in page
    assert "Messaggio per la famiglia (facoltativo, sarà inviato per e-mail)" in page
    note, message = "reinviate da ClasseViva", "Riceverà le credenziali entro oggi."
    form = {"csrf_token": csrf, "nota": note, "messaggio": message}
    preview = client.post(f"{ROOT}/registro/{task_id}/fatto", data=form)
    assert preview.status_code == 200, preview.text
    assert "Credenziali inviate dal Registro Elettronico" in preview.text  # the mail's subject
    assert f"Messaggio della segreteria: {message}" in preview.text  # where the message goes
    assert "Conferma: segna come eseguita e invia l'e-mail" in preview.text
    assert console_app.desks.tasks.listing() != [] and sent(console_app) == []  # nothing yet
    done = client.post(f"{ROOT}/registro/{task_id}/fatto", data={**form, "conferma": "si"})
    assert done.status_code == 303 and done.headers["location"].endswith("eseguita_messaggio")
    (task,) = console_app.desks.tasks.listing(None)
    assert (task.status, task.note) == ("done", note)
    (line,) = console_app.desks.outbox.listing()
    with console_app.uow() as uow:
        entry = uow.outbox.get(line.id)
    assert entry is not None and entry.raw is not None
    assert message.encode() in entry.raw and note.encode() not in entry.raw
    listing = client.get(f"{ROOT}/registro?tutte=si").text
    assert f"Nota interna: {note}" in listing and "Eseguita da olga (console)" in listing


def test_a_task_with_only_a_note_is_done_at_once_and_the_mail_has_no_note(
    console_app: App, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    task_id = register_task(console_app, "sel-choices")
    done = client.post(
        f"{ROOT}/registro/{task_id}/fatto", data={"csrf_token": csrf, "nota": "fatto io"}
    )
    assert done.status_code == 303 and done.headers["location"].endswith("fatto=eseguita")
    (line,) = console_app.desks.outbox.listing()
    with console_app.uow() as uow:
        entry = uow.outbox.get(line.id)
    assert entry is not None and entry.raw is not None and b"fatto io" not in entry.raw
    assert b"Messaggio della segreteria" not in entry.raw
