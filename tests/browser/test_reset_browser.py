"""The family's path in a real browser (Debian's Chromium through Selenium) against
`credmail web` run as a subprocess: open the link, reload it, press the button, see the
outcome; the spent link, an unknown link; axe-core finds no serious or critical problem.
Screenshots of each page go to docs/screenshots/ (shown in the README)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from credmail.config import load_settings
from credmail.service.desks import ResetDesk
from credmail.service.link_backends import BackendKind, SpendOutcome, SpendRequest, SpendResult
from credmail.web.app import create_web_app
from tests.support.browser import (
    WebServer,
    axe_violations,
    replaced,
    screenshot,
    serve_in_thread,
)
from tests.support.links import issue_token
from tests.support.wiring import IDENTITY, make_app, write_config

pytestmark = pytest.mark.integration

LOGO = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48" width="48" height="48">
<rect width="48" height="48" rx="8" fill="#0b4f8a"/>
<text x="24" y="31" font-size="18" text-anchor="middle" fill="#fff"
 font-family="sans-serif">IS</text>
</svg>"""


def settings_env(tmp_path: Path) -> dict[str, str]:
    logo = tmp_path / "logo.svg"
    logo.write_text(LOGO)
    return {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": f"sqlite:///{tmp_path / 'credmail.db'}",
        "CREDMAIL_WEB__LOGO_FILE": str(logo),
        "CREDMAIL_WEB__INVALID_MIN_SECONDS": "0",
    }


def heading(driver: Any) -> str:
    return str(driver.find_element(By.TAG_NAME, "h1").text)


def press(driver: Any) -> None:
    """Click the form's button and wait for the next page (a click does not wait)."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(replaced(page))


def assert_accessible(driver: Any) -> None:
    assert axe_violations(driver) == []


def test_the_family_confirms_the_request_in_a_real_browser(
    tmp_path: Path, browser: Any, web_server: Callable[..., WebServer]
) -> None:
    env = settings_env(tmp_path)
    app = make_app(load_settings(None, environ=env))
    token = issue_token(app, "G1001")
    server = web_server(write_config(tmp_path / "credmail.toml", env))
    link = f"{server.url}/reset/{token}"

    browser.get(link)
    assert heading(browser) == "Conferma la richiesta di credenziali"
    assert "G1001" in browser.page_source and "Mario" in browser.page_source
    logo = browser.find_element(By.CSS_SELECTOR, "header img.logo")
    assert browser.execute_script("return arguments[0].naturalWidth", logo) > 0
    assert_accessible(browser)
    screenshot(browser, "reset-confirm")

    browser.refresh()  # reloading (or a scanner's second visit) spends nothing
    assert heading(browser) == "Conferma la richiesta di credenziali"
    assert app.desks.tasks.listing() == []

    press(browser)
    assert heading(browser) == "Richiesta confermata"
    assert "entro 2 giorni lavorativi" in browser.page_source
    assert_accessible(browser)
    screenshot(browser, "reset-done")
    [task] = app.desks.tasks.listing()
    assert task.username == "G1001"

    browser.get(link)
    assert heading(browser) == "Collegamento già usato"
    assert_accessible(browser)
    screenshot(browser, "reset-used")

    browser.get(f"{server.url}/reset/{token.split('.')[0]}.sbagliato")
    assert heading(browser) == "Collegamento non valido"
    assert_accessible(browser)
    screenshot(browser, "reset-invalid")

    assert server.stop() in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    log = server.output()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    paths = {line.get("path") for line in lines if line.get("event") == "web.request"}
    assert "/reset/…" in paths and "/logo.svg" in paths
    assert token.split(".")[1] not in log and token.split(".")[0] not in log


@dataclasses.dataclass
class DirectoryStandIn:
    """The page's side of a password backend (the LDAP adapter comes from another build)."""

    kind: BackendKind = BackendKind.LDAP
    needs_password: bool = True

    def password_problems(self, password: str, request: SpendRequest) -> list[str]:
        return [] if len(password) >= 12 else ["La password deve avere almeno 12 caratteri."]

    def spend(self, request: SpendRequest) -> SpendOutcome:
        return SpendOutcome(SpendResult.DONE)


def test_the_password_page_in_a_real_browser(tmp_path: Path, browser: Any) -> None:
    env = settings_env(tmp_path)
    app = make_app(load_settings(None, environ=env))
    desk = ResetDesk(app.uow, app.clock, DirectoryStandIn())
    app.desks = dataclasses.replace(app.desks, reset=desk)
    token = issue_token(app, "G1001")
    server = serve_in_thread(create_web_app(app, app.settings))
    try:
        browser.get(f"{server.url}/reset/{token}")
        assert heading(browser) == "Scelga la nuova password"
        assert_accessible(browser)
        screenshot(browser, "reset-password")
        browser.find_element(By.ID, "password").send_keys("corta")
        browser.find_element(By.ID, "password_again").send_keys("corta")
        press(browser)
        assert "almeno 12 caratteri" in browser.page_source
        assert_accessible(browser)
        screenshot(browser, "reset-password-refused")
        phrase = "cavallo batteria graffetta"
        browser.find_element(By.ID, "password").send_keys(phrase)
        browser.find_element(By.ID, "password_again").send_keys(phrase)
        press(browser)
        assert heading(browser) == "Password impostata"
        assert_accessible(browser)
        screenshot(browser, "reset-password-done")
    finally:
        server.stop()
