"""The reset page: every token state, the scanner simulation, CSRF, the worklist spend."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from credmail.adapters.db.models import PersonRow, TokenRow
from credmail.bootstrap import App
from credmail.service.ports import RegisterTask
from tests.support.links import issue_token
from tests.web.conftest import ClientFactory

SAFE_LINKS_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0 (Microsoft Defender for Office 365 Safe Links)"
)

pytestmark = pytest.mark.integration  # a real database (SQLite, PostgreSQL)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def spent(app: App, token: str) -> bool:
    selector = token.split(".")[0]
    with app.uow(read_only=True) as uow:
        row = uow.session.scalar(select(TokenRow).where(TokenRow.selector == selector))
        assert row is not None
        return row.used_at is not None


def tasks(app: App) -> list[RegisterTask]:
    return app.desks.tasks.listing(None)


def test_a_valid_link_shows_who_and_until_when_and_a_button(
    web_app: App, client: TestClient
) -> None:
    token = issue_token(web_app, "G1001")
    page = client.get(f"/reset/{token}")
    assert page.status_code == 200
    assert "G1001" in page.text and "Mario" in page.text
    assert "valido fino al" in page.text
    assert '<button type="submit">Conferma</button>' in page.text
    assert "<script" not in page.text  # works without JavaScript, nothing auto-submits
    assert 'method="post"' in page.text
    assert not spent(web_app, token)


def test_pressing_the_button_spends_the_link_and_records_a_task(
    web_app: App, client: TestClient
) -> None:
    token = issue_token(web_app, "G1001")
    csrf = csrf_of(client.get(f"/reset/{token}").text)
    done = client.post(f"/reset/{token}", data={"csrf_token": csrf})
    assert done.status_code == 200, done.text
    assert "Richiesta confermata" in done.text
    assert "entro 2 giorni lavorativi" in done.text
    assert spent(web_app, token)
    [task] = tasks(web_app)
    assert (task.username, task.first_name, task.status) == ("G1001", "Mario", "open")
    assert task.address == "mario.rossi@example.org"
    assert task.confirmed_at >= task.requested_at
    with web_app.uow(read_only=True) as uow:
        audit = uow.link_audit.for_selector(token.split(".")[0])
    assert [(a.event, a.backend, a.result) for a in audit] == [("spent", "worklist", "done")]
    again = client.post(f"/reset/{token}", data={"csrf_token": csrf})
    assert again.status_code == 404
    assert "già usato" in again.text
    assert len(tasks(web_app)) == 1


def test_a_student_link_names_the_student_account(web_app: App, client: TestClient) -> None:
    token = issue_token(web_app, "S2001")  # a minor: the link went to the guardian
    page = client.get(f"/reset/{token}")
    assert page.status_code == 200
    assert "S2001" in page.text and "Luca" in page.text


def test_scanners_spend_nothing(web_app: App, client: TestClient) -> None:
    token = issue_token(web_app, "G1001")
    assert client.head(f"/reset/{token}").status_code == 200
    assert client.get(f"/reset/{token}").status_code == 200
    assert client.get(f"/reset/{token}", headers={"user-agent": SAFE_LINKS_UA}).status_code == 200
    assert client.head(f"/reset/{token}", headers={"user-agent": ""}).status_code == 200
    assert client.get(f"/reset/{token}").status_code == 200  # still valid for the family
    assert not spent(web_app, token)
    assert tasks(web_app) == []


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "wrong"])
def test_a_post_without_the_right_csrf_token_is_refused(
    web_app: App, client: TestClient, csrf: str | None
) -> None:
    token = issue_token(web_app, "G1001")
    client.get(f"/reset/{token}")  # the cookie is set
    data = {} if csrf is None else {"csrf_token": csrf}
    refused = client.post(f"/reset/{token}", data=data)
    assert refused.status_code == 403
    assert not spent(web_app, token)


def test_a_csrf_token_without_its_cookie_is_refused(
    web_app: App, client_for: ClientFactory
) -> None:
    token = issue_token(web_app, "G1001")
    csrf = csrf_of(client_for(web_app).get(f"/reset/{token}").text)
    other = client_for(web_app)  # another browser: no cookie
    assert other.post(f"/reset/{token}", data={"csrf_token": csrf}).status_code == 403
    assert not spent(web_app, token)


def test_a_csrf_token_of_another_link_is_refused(web_app: App, client: TestClient) -> None:
    mine, theirs = issue_token(web_app, "G1001"), issue_token(web_app, "T3001")
    csrf = csrf_of(client.get(f"/reset/{mine}").text)
    client.get(f"/reset/{theirs}")
    assert client.post(f"/reset/{theirs}", data={"csrf_token": csrf}).status_code == 403


INVALID = {
    "unknown": "Collegamento non valido",
    "expired": "Collegamento scaduto",
    "used": "Collegamento già usato",
    "revoked": "Collegamento sostituito",
    "stale": "Collegamento non più valido",
}


def _token_in_state(app: App, client: TestClient, state: str) -> str:
    if state == "unknown":
        real = issue_token(app, "G1001")
        return real.split(".")[0] + ".not-the-verifier"
    if state == "expired":
        return issue_token(app, "G1001", now=app.clock() - timedelta(hours=3))
    if state == "revoked":
        old = issue_token(app, "G1001")
        issue_token(app, "G1001")
        return old
    token = issue_token(app, "G1001")
    if state == "used":
        csrf = csrf_of(client.get(f"/reset/{token}").text)
        assert client.post(f"/reset/{token}", data={"csrf_token": csrf}).status_code == 200
    if state == "stale":
        with app.uow() as uow:  # the directory changed after the link went out
            uow.session.execute(
                update(PersonRow).where(PersonRow.username == "G1001").values(last_name="Rossini")
            )
            uow.commit()
    return token


@pytest.mark.parametrize("state", sorted(INVALID))
def test_every_invalid_state_has_its_page_and_the_same_status(
    web_app: App, client: TestClient, state: str
) -> None:
    token = _token_in_state(web_app, client, state)
    page = client.get(f"/reset/{token}")
    assert page.status_code == 404, page.text
    assert INVALID[state] in page.text
    assert "segreteria" in page.text
    assert "<form" not in page.text
    assert client.head(f"/reset/{token}").status_code == 404
    assert client.post(f"/reset/{token}", data={"csrf_token": "x"}).status_code == 403
    assert len(tasks(web_app)) == (1 if state == "used" else 0)


def test_a_page_opened_while_valid_and_posted_after_a_newer_link_went_out(
    web_app: App, client: TestClient
) -> None:
    token = issue_token(web_app, "G1001")
    csrf = csrf_of(client.get(f"/reset/{token}").text)
    issue_token(web_app, "G1001")  # the family asked again: this link is revoked
    page = client.post(f"/reset/{token}", data={"csrf_token": csrf})
    assert page.status_code == 404
    assert INVALID["revoked"] in page.text
    assert tasks(web_app) == []
