"""The reset page in process: a real database (SQLite, or both where it matters), the
Starlette app from `create_web_app`, and Starlette's TestClient (httpx)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.web.app import create_web_app
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


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[ClientFactory]:
    opened: list[TestClient] = []

    def build(app: App, address: str = "203.0.113.7") -> TestClient:
        client = TestClient(
            create_web_app(app, app.settings),
            base_url="https://registro.istitutostanga.edu.it",
            client=(address, 50000),
            follow_redirects=False,
        )
        opened.append(client)
        return client

    yield build
    for client in opened:
        client.close()


@pytest.fixture
def client(web_app: App, client_for: ClientFactory) -> TestClient:
    return client_for(web_app)
