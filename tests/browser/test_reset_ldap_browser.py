"""A family sets a password in a real browser: Debian's Chromium (Selenium) against
`credmail web` run as a subprocess with `links.backend = "ldap"`, and the directory a
real slapd. Open the link, reload it, type two different passwords, one the policy
refuses, meet a directory outage, then set it: the new password binds, the old one no
longer does. Screenshots go to docs/screenshots/reset-ldap-*.png."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from credmail.config import load_settings
from tests.support.browser import WebServer, axe_violations, replaced, screenshot
from tests.support.links import issue_token
from tests.support.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, USERS, Slapd
from tests.support.wiring import IDENTITY, make_app, write_config

pytestmark = pytest.mark.integration

PHRASE = "cavallo batteria graffetta 7"
OLD = USERS["G1001"][2]


def heading(driver: Any) -> str:
    return str(driver.find_element(By.TAG_NAME, "h1").text)


def submit_password(driver: Any, first: str, again: str) -> None:
    """Type both fields, press the button, and wait until the next page has replaced this one."""
    driver.find_element(By.ID, "password").send_keys(first)
    driver.find_element(By.ID, "password_again").send_keys(again)
    button = driver.find_element(By.CSS_SELECTOR, "button[type=submit]")
    button.click()
    WebDriverWait(driver, 30).until(replaced(button))


def test_a_family_sets_the_directory_password_in_a_real_browser(
    tmp_path: Path, browser: Any, web_server: Callable[..., WebServer], slapd: Slapd
) -> None:
    bind_password = tmp_path / "ldap-bind.pw"
    bind_password.write_text(SERVICE_PASSWORD + "\n")
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": f"sqlite:///{tmp_path / 'credmail.db'}",
        "CREDMAIL_WEB__INVALID_MIN_SECONDS": "0",
        "CREDMAIL_LINKS__BACKEND": "ldap",
        "CREDMAIL_LDAP__URL": slapd.url,
        "CREDMAIL_LDAP__BIND_DN": SERVICE_DN,
        "CREDMAIL_LDAP__BIND_PASSWORD_FILE": str(bind_password),
        "CREDMAIL_LDAP__BASE_DN": PEOPLE,
        "CREDMAIL_LDAP__CONNECT_TIMEOUT_SECONDS": "2",
    }
    app = make_app(load_settings(None, environ=env))
    token = issue_token(app, "G1001")
    server = web_server(write_config(tmp_path / "credmail.toml", env))
    link = f"{server.url}/reset/{token}"

    browser.get(link)
    assert heading(browser) == "Scelga la nuova password"
    assert "G1001" in browser.page_source
    assert axe_violations(browser) == []
    screenshot(browser, "reset-ldap-password")
    browser.refresh()  # a reload (or a scanner) changes nothing
    assert heading(browser) == "Scelga la nuova password"

    submit_password(browser, PHRASE, PHRASE + "!")
    assert "Le due password non coincidono." in browser.page_source
    assert axe_violations(browser) == []
    screenshot(browser, "reset-ldap-mismatch")

    submit_password(browser, "Mario-cavallo-batteria", "Mario-cavallo-batteria")
    assert "non deve contenere il nome o il cognome" in browser.page_source
    assert slapd.can_bind("G1001", OLD)

    slapd.stop()  # the directory is down when the family presses the button
    submit_password(browser, PHRASE, PHRASE)
    assert heading(browser) == "Riprovi più tardi"
    assert "Il collegamento resta valido" in browser.page_source
    assert axe_violations(browser) == []
    screenshot(browser, "reset-ldap-retry")

    slapd.start()
    browser.get(link)  # the same link, later
    assert heading(browser) == "Scelga la nuova password"
    submit_password(browser, PHRASE, PHRASE)
    assert heading(browser) == "Password impostata"
    assert axe_violations(browser) == []
    screenshot(browser, "reset-ldap-done")
    assert slapd.can_bind("G1001", PHRASE)
    assert not slapd.can_bind("G1001", OLD)

    browser.get(link)
    assert heading(browser) == "Collegamento già usato"

    assert server.stop() in (0, -15)
    log = server.output()
    for secret in (PHRASE, "Mario-cavallo-batteria", SERVICE_PASSWORD, token.split(".")[1]):
        assert secret not in log
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    ldap_events = [e for e in events if e.get("event") == "ldap.spend"]
    assert [e["result"] for e in ldap_events] == ["retry_later", "done"]
