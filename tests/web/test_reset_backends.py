"""The reset page in process with the real external backends: `ldap` against a real slapd
(tests/support/slapd.py) and `webhook` against a real HTTP receiver on loopback that
verifies the signature (tests/support/webhook_server.py)."""

from __future__ import annotations

import pytest
from httpx import Response
from starlette.testclient import TestClient

from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.service.password_policy import DIRECTORY_REFUSED
from tests.support.links import issue_token
from tests.support.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, USERS, Slapd
from tests.support.webhook_server import SECRET, WebhookReceiver
from tests.support.wiring import make_app
from tests.web.conftest import ClientFactory, web_env
from tests.web.test_reset_page import csrf_of, spent

pytestmark = pytest.mark.integration

NEW = "lampone-ventoso-Quaderno-42"
OLD = USERS["G1001"][2]


def audit(app: App, token: str) -> list[tuple[str, str, str, str | None]]:
    with app.uow(read_only=True) as uow:
        events = uow.link_audit.for_selector(token.split(".")[0])
    return [(e.event, e.backend, e.result, e.detail) for e in events]


def post_password(client: TestClient, token: str, first: str, again: str | None = None) -> Response:
    csrf = csrf_of(client.get(f"/reset/{token}").text)
    data = {
        "csrf_token": csrf,
        "password": first,
        "password_again": first if again is None else again,
    }
    response: Response = client.post(f"/reset/{token}", data=data)
    return response


# -- ldap -----------------------------------------------------------------------------------


@pytest.fixture
def ldap_app(sqlite_url: str, slapd: Slapd) -> App:
    env = web_env(
        sqlite_url,
        links__backend="ldap",
        ldap__url=slapd.url,
        ldap__bind_dn=SERVICE_DN,
        ldap__bind_password=SERVICE_PASSWORD,
        ldap__base_dn=PEOPLE,
        ldap__connect_timeout_seconds="2",
    )
    return make_app(load_settings(None, environ=env))


def test_the_ldap_page_asks_for_the_password_twice(
    ldap_app: App, client_for: ClientFactory
) -> None:
    client = client_for(ldap_app)
    token = issue_token(ldap_app, "G1001")
    page = client.get(f"/reset/{token}")
    assert page.status_code == 200
    assert "Scelga la nuova password" in page.text
    assert page.text.count('type="password"') == 2
    assert '<label for="password">' in page.text and '<label for="password_again">' in page.text
    assert 'autocomplete="new-password"' in page.text
    assert not spent(ldap_app, token)


def test_a_mismatch_is_shown_and_nothing_changes(
    ldap_app: App, client_for: ClientFactory, slapd: Slapd
) -> None:
    client = client_for(ldap_app)
    token = issue_token(ldap_app, "G1001")

    page = post_password(client, token, NEW, NEW + "x")

    assert page.status_code == 200
    assert "Le due password non coincidono." in page.text
    assert not spent(ldap_app, token)
    assert slapd.can_bind("G1001", OLD)
    assert audit(ldap_app, token) == []  # the directory was not asked


@pytest.mark.parametrize(
    ("password", "shown"),
    [
        ("corta-1", "La password deve avere almeno 12 caratteri."),
        ("lampone-Rossi-ventoso-42", "La password non deve contenere il nome o il cognome."),
        ("xx-g1001-lampone-ventoso", "La password non deve contenere il nome utente."),
        ("qazwsxedcrfv", "tra le più usate"),
        ("aaaaaaaaaaaaaaaa", "troppo facile da indovinare"),
    ],
)
def test_policy_problems_are_shown_and_the_old_password_still_works(
    ldap_app: App, client_for: ClientFactory, slapd: Slapd, password: str, shown: str
) -> None:
    client = client_for(ldap_app)
    token = issue_token(ldap_app, "G1001")

    page = post_password(client, token, password)

    assert page.status_code == 200
    assert "La password non può essere accettata" in page.text
    assert shown in page.text
    assert 'type="password"' in page.text  # the form is there again
    assert not spent(ldap_app, token)
    assert slapd.can_bind("G1001", OLD)
    assert not slapd.can_bind("G1001", password)


def test_the_directory_own_refusal_is_shown(
    ldap_app: App, client_for: ClientFactory, slapd: Slapd
) -> None:
    """G1002 is under a slapd ppolicy wanting 30 characters: credmail's policy passes NEW."""
    client = client_for(ldap_app)
    token = issue_token(ldap_app, "G1002")

    page = post_password(client, token, NEW)

    assert page.status_code == 200
    assert DIRECTORY_REFUSED.replace("'", "&#39;") in page.text
    assert not spent(ldap_app, token)
    assert slapd.can_bind("G1002", USERS["G1002"][2])
    assert [(e, r) for e, _, r, _ in audit(ldap_app, token)] == [("backend_call", "rejected")]


def test_success_sets_the_password_and_spends_the_link(
    ldap_app: App, client_for: ClientFactory, slapd: Slapd, capsys: pytest.CaptureFixture[str]
) -> None:
    from credmail.logs import configure_logging

    configure_logging("debug", "json")
    client = client_for(ldap_app)
    token = issue_token(ldap_app, "G1001")

    page = post_password(client, token, NEW)

    assert page.status_code == 200, page.text
    assert "Password impostata" in page.text
    assert spent(ldap_app, token)
    assert slapd.can_bind("G1001", NEW)
    assert not slapd.can_bind("G1001", OLD)
    assert audit(ldap_app, token) == [
        ("backend_call", "ldap", "done", "password set"),
        ("spent", "ldap", "done", None),
    ]
    assert client.get(f"/reset/{token}").status_code == 404  # spent: "già usato"
    assert slapd.can_bind("G1001", NEW)
    logged = capsys.readouterr()
    assert NEW not in logged.out + logged.err
    assert SERVICE_PASSWORD not in logged.out + logged.err


def test_an_outage_says_try_later_and_the_link_still_works(
    ldap_app: App, client_for: ClientFactory, slapd: Slapd
) -> None:
    client = client_for(ldap_app)
    token = issue_token(ldap_app, "G1001")
    slapd.stop()

    page = post_password(client, token, NEW)

    assert page.status_code == 503
    assert "Riprovi più tardi" in page.text
    assert "Il collegamento resta valido" in page.text
    assert not spent(ldap_app, token)
    [(event, _, result, detail)] = audit(ldap_app, token)
    assert (event, result) == ("backend_call", "retry_later")
    assert detail is not None and "unavailable" in detail

    slapd.start()  # the directory is back: the same link works
    assert client.get(f"/reset/{token}").status_code == 200
    done = post_password(client, token, NEW)
    assert done.status_code == 200 and "Password impostata" in done.text
    assert slapd.can_bind("G1001", NEW)
    assert spent(ldap_app, token)


# -- webhook --------------------------------------------------------------------------------


@pytest.fixture
def webhook_app(sqlite_url: str, webhook_receiver: WebhookReceiver) -> App:
    env = web_env(
        sqlite_url,
        links__backend="webhook",
        webhook__url=webhook_receiver.url,
        webhook__secret=SECRET,
        webhook__retries="1",
        webhook__retry_backoff_seconds="0",
    )
    return make_app(load_settings(None, environ=env))


def confirm(client: TestClient, token: str) -> Response:
    csrf = csrf_of(client.get(f"/reset/{token}").text)
    response: Response = client.post(f"/reset/{token}", data={"csrf_token": csrf})
    return response


def test_the_webhook_page_posts_a_signed_request_and_spends_the_link(
    webhook_app: App, client_for: ClientFactory, webhook_receiver: WebhookReceiver
) -> None:
    client = client_for(webhook_app)
    token = issue_token(webhook_app, "G1001")
    page = client.get(f"/reset/{token}")
    assert 'type="password"' not in page.text
    assert webhook_receiver.received == []  # opening the page calls nothing

    done = confirm(client, token)

    assert done.status_code == 200, done.text
    assert "passa al sistema della scuola" in done.text  # [webhook] next_steps
    assert spent(webhook_app, token)
    [hit] = webhook_receiver.received
    assert hit.signature_ok
    selector = token.split(".")[0]
    assert hit.headers["Idempotency-Key"] == selector
    body = hit.json
    assert (body["request_id"], body["username"]) == (selector, "G1001")
    assert body["person"] == {"first_name": "Mario", "last_name": "Rossi", "role": "guardian"}
    assert body["confirmed_at"].endswith("Z")
    assert token.split(".")[1] not in hit.body.decode()  # the verifier never leaves
    assert [(e, r) for e, _, r, _ in audit(webhook_app, token)] == [
        ("backend_call", "done"),
        ("spent", "done"),
    ]


def test_webhook_failures_keep_the_link_and_a_later_press_is_the_same_request(
    webhook_app: App, client_for: ClientFactory, webhook_receiver: WebhookReceiver
) -> None:
    client = client_for(webhook_app)
    token = issue_token(webhook_app, "G1001")
    webhook_receiver.script = [500, 503, 400]

    first = confirm(client, token)  # 500, retried, 503: retry later
    second = confirm(client, token)  # 400: not retried
    third = confirm(client, token)  # 200

    assert first.status_code == 503 and "Riprovi più tardi" in first.text
    assert second.status_code == 503
    assert third.status_code == 200 and spent(webhook_app, token)
    keys = {hit.headers["Idempotency-Key"] for hit in webhook_receiver.received}
    assert len(webhook_receiver.received) == 4 and keys == {token.split(".")[0]}
    details = [d for e, _, _, d in audit(webhook_app, token) if e == "backend_call"]
    assert details == ["webhook answered 503", "webhook answered 400", "webhook answered 200"]
