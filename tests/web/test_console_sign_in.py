"""Signing in to the console over HTTP: a password is taken as typed, a TOTP code opens
one session only, a session ends after its maximum age however much it is used."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from starlette.testclient import TestClient

from credmail.bootstrap import App
from tests.fakes import FakeClock
from tests.web.conftest import CLI, ROOT, ClientFactory, csrf_of, sign_in

pytestmark = pytest.mark.integration  # a real database (SQLite)

SPACED = "  con spazi intorno  "


def attempt(client: TestClient, name: str, password: str, code: str = "") -> int:
    page = client.get(f"{ROOT}/accesso")
    data = {"csrf_token": csrf_of(page.text), "nome": name, "password": password, "codice": code}
    return int(client.post(f"{ROOT}/accesso", data=data).status_code)


def test_a_password_is_taken_as_typed(
    console_app: App, admin: tuple[TestClient, str], client_for: ClientFactory
) -> None:
    client, csrf = admin
    data = {"csrf_token": csrf, "nome": "piero", "ruolo": "operatore", "password": SPACED}
    assert client.post(f"{ROOT}/personale/aggiungi", data=data).status_code == 303
    console_app.desks.staff.add("marta", "operatore", SPACED, CLI)  # `staff add`, from stdin
    visitor = client_for(console_app, "203.0.113.20")
    for name in ("piero", "marta"):
        assert attempt(visitor, name, SPACED.strip()) == 401, name
        assert attempt(visitor, name, SPACED) == 303, name


def test_a_totp_code_opens_one_session_only(
    console_app: App, clock: FakeClock, client_for: ClientFactory
) -> None:
    totp = pyotp.parse_uri(console_app.desks.staff.totp("olga", CLI))
    assert isinstance(totp, pyotp.TOTP)
    code = totp.at(clock())
    first, second = client_for(console_app), client_for(console_app, "203.0.113.21")
    assert attempt(first, "olga", "una password lunga", code) == 303
    assert attempt(second, "olga", "una password lunga", code) == 401
    assert second.get(f"{ROOT}/").status_code == 303  # not signed in


def test_a_session_ends_twelve_hours_after_sign_in_however_used(
    clock: FakeClock, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    for _ in range(24):  # 11 h 36 min, a page every 29 minutes
        clock.now += timedelta(minutes=29)
        assert client.get(f"{ROOT}/revisione").status_code == 200
    clock.now += timedelta(minutes=29)
    answer = client.get(f"{ROOT}/revisione")
    assert (answer.status_code, answer.headers["location"]) == (303, f"{ROOT}/accesso")
    sign_in(client, "anna")
    assert client.get(f"{ROOT}/revisione").status_code == 200
