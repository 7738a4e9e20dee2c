"""Forse richieste di credenziali in a real browser (Chromium through Selenium) against
`credmail web` as a subprocess, with a real Dovecot and aiosmtpd: the near misses listed,
one treated as a request for a named student, one dismissed; axe-core finds no serious
or critical problem; screenshot docs/screenshots/console-forse-credenziali.png."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from credmail.entrypoints.daemon import run_once
from tests.browser.test_console_browser import DESKTOP, PASSWORD, check, heading, press, submit
from tests.support.browser import WebServer, mailbox_console_app
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import write_config

pytestmark = pytest.mark.integration


def test_near_misses_are_worked_in_a_real_browser(
    tmp_path: Path,
    browser: Any,
    web_server: Callable[..., WebServer],
    dovecot: Dovecot,
    smtp: SmtpServer,
) -> None:
    app, env = mailbox_console_app(tmp_path, dovecot, smtp, "anna", "amministratore")
    shared = "famiglia.bianchi@example.org"
    dovecot.append(request(shared, "Password registro", body="Abbiamo perso la password."))
    dovecot.append(request("zeta@example.net", "", body="Vorrei le credenziali del registro."))
    run_once(app)
    first, _second = (item.id for item in app.desks.near_miss.listing())
    server = web_server(write_config(tmp_path / "credmail.toml", env))
    browser.set_window_size(*DESKTOP)
    console = f"{server.url}/console"

    browser.get(f"{console}/")
    browser.find_element(By.ID, "nome").send_keys("anna")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(browser, "/accesso")
    browser.find_element(By.LINK_TEXT, "Forse richieste di credenziali").click()
    assert heading(browser) == "Forse richieste di credenziali"
    assert "Password registro" in browser.page_source
    assert "(senza oggetto)" in browser.page_source
    check(browser, "forse-credenziali")

    browser.find_element(By.ID, f"studente-{first}").send_keys("Giulia Bianchi")
    form = browser.find_element(By.ID, f"studente-{first}").find_element(By.XPATH, "..")
    press(browser, form)
    assert "la risposta è in coda per l'invio all'indirizzo in rubrica" in browser.page_source
    forms = browser.find_elements(By.CSS_SELECTOR, 'form[action$="/forse-credenziali/archivia"]')
    press(browser, forms[0])
    assert "Archiviato" in browser.page_source
    assert "Nessun messaggio da gestire." in browser.page_source
    check(browser, "forse-credenziali-gestiti")
    assert [item.status for item in app.desks.near_miss.listing(None)] == [
        "treated",
        "dismissed",
    ]
    run_once(app)
    assert [rcpt for _f, rcpts, _raw in smtp.handler.messages for rcpt in rcpts] == [shared]
