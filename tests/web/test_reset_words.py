"""The reset page says what the mail said and what will happen: why the link was sent
(a request, the secretariat's approval, the school's September mailing), whose account it
is, never a code credmail made up, and the same next steps as the replies."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from credmail.adapters.db.models import PersonRow
from credmail.bootstrap import App, templates_desk
from credmail.core.campaign import PURPOSE_FIRST_ACCESS
from credmail.service.ports import ORIGIN_APPROVAL, ORIGIN_CAMPAIGN
from tests.support.links import issue_token

pytestmark = pytest.mark.integration  # a real database

NOT_ASKED = "Se non ha chiesto Lei le credenziali"


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_a_request_link_says_who_asked(web_app: App, client: TestClient) -> None:
    page = text_of(client.get(f"/reset/{issue_token(web_app, 'G1001')}").text)
    assert "conferma di aver chiesto Lei queste credenziali" in page
    assert NOT_ASKED in page
    assert "il Suo account, intestato a Mario Rossi, codice utente G1001." in page


def test_a_september_link_never_says_the_family_asked(web_app: App, client: TestClient) -> None:
    token = issue_token(web_app, "S2001", purpose=PURPOSE_FIRST_ACCESS, origin=ORIGIN_CAMPAIGN)
    page = text_of(client.get(f"/reset/{token}").text)
    assert "Primo accesso al Registro Elettronico" in page
    assert "non serve che ne abbia fatto richiesta" in page
    assert NOT_ASKED not in page and "chiesto Lei" not in page
    assert "Luca Rossi, CODICE STUDENTE S2001" in page


def test_an_approved_link_says_the_secretariat_sent_it(web_app: App, client: TestClient) -> None:
    token = issue_token(web_app, "G1001", origin=ORIGIN_APPROVAL)
    page = text_of(client.get(f"/reset/{token}").text)
    assert "La segreteria ha esaminato la Sua richiesta e Le ha inviato questo collegamento" in page


def test_a_made_up_code_is_never_shown_and_the_student_is_named_by_sex(
    web_app: App, client: TestClient
) -> None:
    with web_app.uow() as uow:
        uow.session.execute(update(PersonRow).where(PersonRow.username == "S2002").values(sex="F"))
        uow.commit()
    page = text_of(client.get(f"/reset/{issue_token(web_app, 'S2002')}").text)
    assert "della studentessa Giulia Bianchi, CODICE STUDENTE S2002" in page
    with web_app.uow() as uow:
        uow.session.execute(
            update(PersonRow).where(PersonRow.username == "S2002").values(username="alunno-5256302")
        )
        uow.commit()
    token = issue_token(web_app, "alunno-5256302")
    html = client.get(f"/reset/{token}").text
    assert "alunno-5256302" not in text_of(html)  # only in the hidden form field, if at all
    assert "della studentessa Giulia Bianchi." in text_of(html)


def test_the_page_promises_what_the_worklist_reply_promised(
    web_app: App, client: TestClient
) -> None:
    """One text per backend: the page's "what happens next" is the replies' sentence."""
    composer = templates_desk(web_app.settings).composer
    template = composer.env.get_template("next_steps.j2")
    after = str(template.make_module(composer.common).after_confirm())  # type: ignore[attr-defined]  # a macro
    assert "entro 2 giorni lavorativi" in after
    page = text_of(client.get(f"/reset/{issue_token(web_app, 'G1001')}").text)
    assert after in page
    _, reply = composer.render(
        "link_adult",
        {
            "person": None,
            "username": "G1001",
            "link": "https://x/reset/y",
            "expires_at": "30/11/2026 alle 11:00",
        },
    )
    assert after in " ".join(reply.split())


def test_a_made_up_code_is_not_even_in_the_password_forms_hidden_field(web_app: App) -> None:
    """The LDAP page's hidden username (for password managers) holds only a real code."""
    from zoneinfo import ZoneInfo

    from credmail.service.desks.reset import ResetView
    from credmail.service.link_backends import BackendKind
    from credmail.service.ports import TokenState
    from credmail.web.app import make_pages

    pages = make_pages(web_app.settings, ZoneInfo("Europe/Rome"))
    for username, shown in (("alunno-5256302", False), ("S2002", True)):
        view = ResetView(
            TokenState.VALID, BackendKind.LDAP, True, username=username, name="Giulia Bianchi"
        )
        html = pages.render("reset_confirm.html", view=view, problems=(), csrf_token="t")
        assert (username in bytes(html.body).decode()) is shown


def test_the_limits_are_counted_off_the_event_loop(
    web_app: App, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counters live in the database: a SQLite writer waiting for the lock on the event
    loop would stall every request of the process."""
    from credmail.web.ratelimit import SlidingWindow

    on_loop: list[str] = []

    def watch(name: str) -> None:
        original = getattr(SlidingWindow, name)

        def call(self: SlidingWindow, key: str) -> bool:
            try:
                asyncio.get_running_loop()
                on_loop.append(name)
            except RuntimeError:
                pass
            return bool(original(self, key))

        monkeypatch.setattr(SlidingWindow, name, call)

    for name in ("exceeded", "hit"):
        watch(name)
    client.get("/reset/unknown.token")
    client.post("/reset/unknown.token", data={"csrf_token": "x"})
    assert on_loop == []
