"""Defer, remember and the bulk task page in a real browser (Chromium through Selenium,
`credmail web` as a subprocess, SQLite): defer a request, approve one from a new address
for the right family and see the address on the person's page, tick two children's
register tasks and mark them done at once. axe-core finds no serious or critical problem
on these pages; screenshots go to docs/screenshots/console-*.png."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from credmail.service.ports import RegisterTask
from tests.browser.test_console_browser import (
    DESKTOP,
    check,
    heading,
    press,
    sign_in,
    submit,
)
from tests.support.browser import WebServer, mailbox_console_app
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import write_config
from tests.web.conftest import hold

pytestmark = pytest.mark.integration

BIANCHI = "famiglia.bianchi@example.org"
NEW_ADDRESS = "mamma.rossi@nuovo.example.net"


def test_defer_remember_and_bulk_tasks_in_a_real_browser(
    tmp_path: Path,
    browser: Any,
    web_server: Callable[..., WebServer],
    dovecot: Dovecot,
    smtp: SmtpServer,
) -> None:
    app, env = mailbox_console_app(tmp_path, dovecot, smtp, "olga", "operatore")
    later = hold(app, "sconosciuto@example.net", "adult", ("unknown_sender",))
    new = hold(app, NEW_ADDRESS, "student", ("unknown_sender",))
    now = app.clock()
    with app.uow() as uow:
        for n, (username, first) in enumerate((("S2002", "Giulia"), ("S2003", "Marco"))):
            task = RegisterTask(0, username, "x", "student", first, "Bianchi", BIANCHI, now, now)
            uow.tasks.add(task, f"sel-bulk-{n}")
        uow.commit()
    server = web_server(write_config(tmp_path / "credmail.toml", env))
    browser.set_window_size(*DESKTOP)
    console = f"{server.url}/console"
    sign_in(browser, console, "olga")

    browser.get(f"{console}/revisione/{later}")
    day = (now + timedelta(days=3)).date().isoformat()  # the date picker's value
    field = browser.find_element(By.ID, "data-rinvia")
    browser.execute_script("arguments[0].value = arguments[1]", field, day)
    submit(browser, f"/revisione/{later}/rinvia")
    assert "Richiesta rinviata" in browser.page_source and f"#{later}" not in browser.page_source
    check(browser, "da-rivedere-rinviate")

    browser.get(f"{console}/revisione/{new}")
    browser.find_element(By.ID, "persona-ricorda").send_keys("S2001")
    submit(browser, f"/revisione/{new}/ricorda")
    assert f"Aggiungere {NEW_ADDRESS}" in browser.page_source
    check(browser, "approva-e-ricorda")
    box = browser.find_element(By.XPATH, "//input[@name='ricorda']")
    assert not box.is_selected()  # adding an address is a choice, never the default
    box.click()
    press(browser, browser.find_element(By.XPATH, "//form[.//input[@name='ricorda']]"))
    assert "l'indirizzo del mittente è stato aggiunto alla rubrica" in browser.page_source
    browser.get(f"{console}/rubrica/persona/G1001")
    assert f"Rimuovi {NEW_ADDRESS}" in browser.page_source
    check(browser, "persona-indirizzi-aggiunti")

    browser.get(f"{console}/registro")
    assert f"Famiglia all'indirizzo {BIANCHI} (2 attività)" in browser.page_source
    check(browser, "registro-in-blocco")
    for box in browser.find_elements(By.CSS_SELECTOR, "input[name=attivita]"):
        box.click()
    submit(browser, "/registro/eseguite")
    assert heading(browser) == "Da fare nel registro"
    assert "Attività segnate come eseguite: 2" in browser.page_source
    assert "Avvisi per e-mail in coda: 1" in browser.page_source
    assert app.desks.tasks.listing() == []
