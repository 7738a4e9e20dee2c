"""Headers, rate limits, trusted proxies, logs without tokens, the password form, and
concurrent spends on both databases."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

import pytest
import structlog
from starlette.testclient import TestClient

from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.service.desks import ResetDesk
from credmail.service.desks.reset import SpendStatus
from credmail.service.link_backends import BackendKind, SpendOutcome, SpendRequest, SpendResult
from credmail.web.app import create_web_app
from credmail.web.security import redact_path
from tests.support.links import issue_token
from tests.support.wiring import make_app
from tests.web.conftest import ClientFactory, web_env
from tests.web.test_reset_page import csrf_of, tasks

pytestmark = pytest.mark.integration  # a real database (SQLite, PostgreSQL)


def test_every_page_carries_the_security_headers(web_app: App, client: TestClient) -> None:
    token = issue_token(web_app, "G1001")
    for response in (
        client.get(f"/reset/{token}"),
        client.get("/reset/nothing"),
        client.get("/nowhere"),
        client.get("/static/credmail.css"),
    ):
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-robots-tag"] == "noindex, nofollow"
        assert headers["x-content-type-options"] == "nosniff"
        assert "server" not in headers


def test_the_csrf_cookie_is_strict_and_http_only(web_app: App, client: TestClient) -> None:
    page = client.get(f"/reset/{issue_token(web_app, 'G1001')}")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie


def test_posts_are_limited_per_client_address(sqlite_url: str, client_for: ClientFactory) -> None:
    app = make_app(load_settings(None, environ=web_env(sqlite_url, web__post_per_minute="3")))
    token = issue_token(app, "G1001")
    flood = client_for(app, "198.51.100.1")
    flood.get(f"/reset/{token}")
    codes = [flood.post(f"/reset/{token}", data={"csrf_token": "x"}).status_code for _ in range(4)]
    assert codes == [403, 403, 403, 429]
    assert "Troppi tentativi" in flood.post(f"/reset/{token}").text
    family = client_for(app, "198.51.100.2")  # another address is not affected
    csrf = csrf_of(family.get(f"/reset/{token}").text)
    assert family.post(f"/reset/{token}", data={"csrf_token": csrf}).status_code == 200


def test_invalid_links_are_limited_per_client_address(
    sqlite_url: str, client_for: ClientFactory
) -> None:
    app = make_app(load_settings(None, environ=web_env(sqlite_url, web__invalid_per_hour="5")))
    token = issue_token(app, "G1001")
    guesser = client_for(app, "198.51.100.3")
    codes = [guesser.get(f"/reset/guess{n}.x").status_code for n in range(6)]
    assert codes == [404] * 5 + [429]
    assert guesser.get(f"/reset/{token}").status_code == 429  # even a real link, for a while
    assert client_for(app, "198.51.100.4").get(f"/reset/{token}").status_code == 200


def test_forwarded_addresses_count_only_from_trusted_proxies(
    sqlite_url: str, client_for: ClientFactory
) -> None:
    env = web_env(sqlite_url, web__invalid_per_hour="2", web__trusted_proxies='["10.0.0.1"]')
    app = make_app(load_settings(None, environ=env))
    proxy = client_for(app, "10.0.0.1")
    for _ in range(2):
        proxy.get("/reset/a.b", headers={"x-forwarded-for": "192.0.2.1"})
    assert proxy.get("/reset/a.b", headers={"x-forwarded-for": "192.0.2.1"}).status_code == 429
    # the proxy's other clients are not blocked with the first one
    assert proxy.get("/reset/a.b", headers={"x-forwarded-for": "192.0.2.2"}).status_code == 404
    # a client that is not a trusted proxy cannot choose its own address
    direct = client_for(app, "192.0.2.50")
    for n in range(2):
        direct.get("/reset/a.b", headers={"x-forwarded-for": f"192.0.2.{100 + n}"})
    assert direct.get("/reset/a.b", headers={"x-forwarded-for": "192.0.2.99"}).status_code == 429


def test_no_token_in_any_log_line(
    web_app: App, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = issue_token(web_app, "G1001")
    selector, verifier = token.split(".")
    with structlog.testing.capture_logs() as logs, caplog.at_level(logging.DEBUG):
        csrf = csrf_of(client.get(f"/reset/{token}").text)
        client.head(f"/reset/{token}")
        client.post(f"/reset/{token}", data={"csrf_token": csrf})
        client.get(f"/reset/{token}")
        client.get(f"/reset/{selector}.wrong")
    server = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    text = repr(logs) + "\n".join(server)  # httpx is the test's own client, not the server
    assert logs, "the requests were logged"
    assert any(entry.get("path") == "/reset/…" for entry in logs)
    assert verifier not in text and selector not in text


def test_redact_path_hides_what_follows_reset() -> None:
    assert redact_path("/scuola/reset/abc.def") == "/scuola/reset/…"
    assert redact_path("/static/credmail.css") == "/static/credmail.css"


@dataclasses.dataclass
class PasswordBackend:
    """Stands in for the LDAP backend (built by another helper) at the page level."""

    answers: list[SpendResult]
    kind: BackendKind = BackendKind.LDAP
    needs_password: bool = True
    passwords: list[str] = dataclasses.field(default_factory=list)

    def password_problems(self, password: str, request: SpendRequest) -> list[str]:
        if request.username.lower() in password.lower():
            return ["La password non può contenere il codice utente."]
        return []

    def spend(self, request: SpendRequest) -> SpendOutcome:
        assert request.new_password is not None
        self.passwords.append(request.new_password)
        return SpendOutcome(self.answers.pop(0))


def with_backend(app: App, backend: PasswordBackend) -> App:
    app.desks = dataclasses.replace(app.desks, reset=ResetDesk(app.uow, app.clock, backend))
    return app


def test_the_password_form_checks_both_fields_and_the_policy(
    web_app: App, client_for: ClientFactory
) -> None:
    backend = PasswordBackend([SpendResult.RETRY_LATER, SpendResult.DONE])
    client = client_for(with_backend(web_app, backend))
    token = issue_token(web_app, "G1001")
    page = client.get(f"/reset/{token}")
    assert 'autocomplete="new-password"' in page.text and "Ripeta la nuova password" in page.text
    csrf = csrf_of(page.text)
    url = f"/reset/{token}"

    def post(first: str, again: str) -> str:
        data = {"csrf_token": csrf, "password": first, "password_again": again}
        return str(client.post(url, data=data).text)

    assert "non coincidono" in post("cavallo batteria graffetta", "cavallo batteria")
    assert "codice utente" in post("G1001-e-la-mia-password", "G1001-e-la-mia-password")
    assert backend.passwords == []
    later = client.post(
        url,
        data={"csrf_token": csrf, "password": "x" * 12 + "ok", "password_again": "x" * 12 + "ok"},
    )
    assert later.status_code == 503 and "Riprovi più tardi" in later.text
    done = client.post(
        url,
        data={"csrf_token": csrf, "password": "x" * 12 + "ok", "password_again": "x" * 12 + "ok"},
    )
    assert done.status_code == 200 and "Password impostata" in done.text
    assert tasks(web_app) == []


def test_concurrent_presses_spend_the_link_once(db_url: str, tmp_path: Path) -> None:
    app = make_app(load_settings(None, environ=web_env(db_url)))
    token = issue_token(app, "G1001")
    start = threading.Barrier(8)
    results: list[SpendStatus] = []

    def press() -> None:
        start.wait()
        results.append(app.desks.reset.spend(token).status)

    threads = [threading.Thread(target=press) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results).count(SpendStatus.DONE) == 1
    assert results.count(SpendStatus.INVALID) == 7
    assert len(tasks(app)) == 1


def test_an_unexpected_failure_says_try_later_and_logs_no_token(
    web_app: App, client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    token = issue_token(web_app, "G1001")

    class Broken:
        needs_password = False

        def look(self, token: str) -> None:
            raise RuntimeError(f"database gone while reading {token}")

    web_app.desks = dataclasses.replace(web_app.desks, reset=Broken())  # type: ignore[arg-type]
    client = TestClient(client_for(web_app).app, raise_server_exceptions=True)
    with structlog.testing.capture_logs() as logs, caplog.at_level(logging.DEBUG):
        page = client.get(f"/reset/{token}")
    assert page.status_code == 503 and "Riprovi più tardi" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert {"event": "web.error", "error": "RuntimeError", "path": "/reset/…"}.items() <= next(
        entry for entry in logs if entry["event"] == "web.error"
    ).items()
    server = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert token not in repr(logs) + "\n".join(server)


def test_the_pages_live_under_the_path_of_the_public_url(
    sqlite_url: str, client_for: ClientFactory
) -> None:
    env = web_env(sqlite_url, links__base_url="https://www.scuola.example/credenziali")
    app = make_app(load_settings(None, environ=env))
    token = issue_token(app, "G1001")
    client = client_for(app)
    page = client.get(f"/credenziali/reset/{token}")
    assert page.status_code == 200
    assert 'href="/credenziali/static/credmail.css"' in page.text
    # over HTTPS the CSRF cookie is __Host- (Path=/ by its rules), under plain HTTP the
    # path's own
    assert page.headers["set-cookie"].startswith("__Host-credmail_csrf=")
    assert "path=/;" in page.headers["set-cookie"].lower()
    assert client.get("/credenziali/static/credmail.css").status_code == 200
    assert client.get(f"/reset/{token}").status_code == 404
    with TestClient(create_web_app(app, app.settings), base_url="http://127.0.0.1") as plain:
        cookie = plain.get(f"/credenziali/reset/{token}").headers["set-cookie"]
    assert cookie.startswith("credmail_csrf=") and "path=/credenziali;" in cookie.lower()


def test_every_invalid_answer_waits_out_the_same_floor(
    sqlite_url: str, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The floor is applied (what is slept is recorded, not timed): an unknown link, whose
    lookup is the cheapest, waits nearly the whole floor; a valid page does not wait."""
    import credmail.web.reset as reset_module

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(reset_module, "pause", record)
    env = web_env(sqlite_url, web__invalid_min_seconds="3")
    app = make_app(load_settings(None, environ=env))
    client = client_for(app)
    valid = issue_token(app, "G1001")
    assert client.get(f"/reset/{valid}").status_code == 200
    assert waits == []
    for link in (f"/reset/{valid.split('.')[0]}.x", "/reset/nothing", "/reset/" + "a" * 300):
        assert client.get(link).status_code == 404
    issue_token(app, "G1001")  # `valid` is now revoked
    assert client.get(f"/reset/{valid}").status_code == 404
    assert len(waits) == 4 and all(2 < w <= 3 for w in waits)
