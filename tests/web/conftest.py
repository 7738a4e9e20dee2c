"""The reset page and the console in process: a real database (SQLite, or both where it
matters), the Starlette app from `create_web_app`, and Starlette's TestClient (httpx);
for the console, an administrator (anna) and an operator (olga) signed in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.service.desks import Actor
from credmail.service.ports import RegisterTask, ReviewItem
from credmail.web.app import create_web_app
from tests.fakes import FakeClock
from tests.support.requests import request
from tests.support.wiring import IDENTITY, make_app

ClientFactory = Callable[..., TestClient]


def web_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": db_url,
        "CREDMAIL_WEB__INVALID_MIN_SECONDS": "0",
    }
    env.update({f"CREDMAIL_{key.upper()}": value for key, value in extra.items()})
    return env


@pytest.fixture
def web_app(sqlite_url: str) -> App:
    return make_app(load_settings(None, environ=web_env(sqlite_url)))


def client_at(asgi: ASGIApp, address: str) -> TestClient:
    """A browser at `address` on the web app `asgi` (over HTTPS, redirects not followed)."""
    return TestClient(
        asgi,
        base_url="https://registro.istitutostanga.edu.it",
        client=(address, 50000),
        follow_redirects=False,
    )


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[ClientFactory]:
    opened: list[TestClient] = []

    def build(app: App, address: str = "203.0.113.7") -> TestClient:
        client = client_at(create_web_app(app, app.settings), address)
        opened.append(client)
        return client

    yield build
    for client in opened:
        client.close()


@pytest.fixture
def client(web_app: App, client_for: ClientFactory) -> TestClient:
    return client_for(web_app)


PASSWORD = "una password lunga"
ROOT = "/console"
CLI = Actor("root", "cli")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def console_app(sqlite_url: str, clock: FakeClock, tmp_path: Path) -> App:
    return console_at(sqlite_url, clock, tmp_path)


def console_at(db_url: str, clock: FakeClock, tmp_path: Path) -> App:
    """The console's app on `db_url`, with anna (administrator) and olga (operator)."""
    env = web_env(db_url, console__totp_key_file=str(tmp_path / "totp.key"))
    app = make_app(load_settings(None, environ=env), clock=clock)
    app.desks.staff.add("anna", "amministratore", PASSWORD, CLI)
    app.desks.staff.add("olga", "operatore", PASSWORD, CLI)
    return app


@pytest.fixture
def office(db_url: str, clock: FakeClock, tmp_path: Path) -> App:
    """The console's app on SQLite and PostgreSQL, with anna and olga."""
    return console_at(db_url, clock, tmp_path)


@pytest.fixture
def olga(office: App, client_for: ClientFactory) -> tuple[TestClient, str]:
    """The operator olga signed in to `office`."""
    client = client_for(office, "203.0.113.8")
    return client, sign_in(client, "olga")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD, code: str = "") -> str:
    page = client.get(f"{ROOT}/accesso")
    answer = client.post(
        f"{ROOT}/accesso",
        data={"csrf_token": csrf_of(page.text), "nome": name, "password": password, "codice": code},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get(f"{ROOT}/").text)


@pytest.fixture
def admin(console_app: App, client_for: ClientFactory) -> tuple[TestClient, str]:
    client = client_for(console_app)
    return client, sign_in(client, "anna")


@pytest.fixture
def operator(console_app: App, client_for: ClientFactory) -> tuple[TestClient, str]:
    client = client_for(console_app, "203.0.113.8")
    return client, sign_in(client, "olga")


def hold(app: App, sender: str, kind: str, reasons: tuple[str, ...], **headers: str) -> int:
    """A request held for review, as the pipeline stores one; its id."""
    item = ReviewItem(
        id=0,
        created_at=app.clock(),
        status="pending",
        kind=kind,
        sender=sender,
        message_id=None,
        subject="Richiesta credenziali",
        reasons=reasons,
        raw=request(sender, body="Buongiorno, vorrei le credenziali.", **headers),
    )
    with app.uow() as uow:
        uow.review.add(item, None)
        item_id = uow.review.pending()[-1].id
        uow.commit()
    return item_id


def register_task(app: App, selector: str) -> int:
    """An open register task for the teacher T3001, at her address on file; its id."""
    now = app.clock()
    task = RegisterTask(
        0, "T3001", "adult", "teacher", "Giovanna", "Esposito", "g.esposito@example.org", now, now
    )
    with app.uow() as uow:
        task_id = uow.tasks.add(task, selector)
        uow.commit()
    return task_id
