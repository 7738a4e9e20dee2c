"""The register's own files imported from the console in a real browser (Chromium through
Selenium) against `credmail web` as a subprocess: both files chosen at once, the Italian
preview, the confirmation; a damaged file named in Italian on the form again. axe-core finds
no serious or critical problem on either page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.service.desks import Actor
from tests.browser.test_console_browser import DESKTOP, PASSWORD, heading, submit
from tests.support.browser import WebServer, axe_violations
from tests.support.register_files import Guardian, Pupil, classeviva_xls, guardians_xlsx
from tests.support.wiring import IDENTITY, make_app, write_config

pytestmark = pytest.mark.integration

LUCA = Pupil(5256305, "Rossi", "Luca", date(2012, 5, 1), "RSSLCU12E01H501A", year=1)
MARIO = Guardian(LUCA.tax_code, "mario.rossi@example.org", "PADRE", "ROSSI", "MARIO", "RSSMRA70")


def console_app(tmp_path: Path) -> tuple[App, dict[str, str]]:
    """An empty directory on SQLite with an administrator, anna; and its settings."""
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": f"sqlite:///{tmp_path / 'credmail.db'}",
        "CREDMAIL_WEB__INVALID_MIN_SECONDS": "0",
    }
    app = make_app(load_settings(None, environ=env), directory=False)
    app.desks.staff.add("anna", "amministratore", PASSWORD, Actor("root", "cli"))
    return app, env


def signed_in(browser: Any, server: WebServer) -> str:
    """anna signed in at desktop width; the console's URL."""
    browser.set_window_size(*DESKTOP)
    console = f"{server.url}/console"
    browser.get(f"{console}/")
    browser.find_element(By.ID, "nome").send_keys("anna")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(browser, "/accesso")
    return console


def test_the_registers_files_are_imported_from_the_console(
    tmp_path: Path, browser: Any, web_server: Callable[..., WebServer]
) -> None:
    app, env = console_app(tmp_path)
    students, guardians, damaged = (tmp_path / n for n in ("alunni.xls", "tutori.xlsx", "x.xls"))
    students.write_bytes(classeviva_xls([LUCA]))
    guardians.write_bytes(guardians_xlsx([MARIO]))
    damaged.write_bytes(classeviva_xls([LUCA])[:3000])
    console = signed_in(browser, web_server(write_config(tmp_path / "credmail.toml", env)))

    browser.get(f"{console}/rubrica/importa")
    browser.find_element(By.ID, "file").send_keys(str(damaged))
    submit(browser, "/rubrica/importa")
    assert "x.xls: non è un file Excel 97-2003 (.xls) leggibile" in browser.page_source
    assert axe_violations(browser) == []

    browser.find_element(By.ID, "file").send_keys(f"{students}\n{guardians}")
    submit(browser, "/rubrica/importa")
    assert heading(browser) == "Anteprima dell'importazione"
    assert "alunni.xls (impronta" in browser.page_source
    assert "tutori: <strong>1</strong>" in browser.page_source
    assert axe_violations(browser) == []
    assert app.desks.directory.people() == []
    submit(browser, "/rubrica/importa/conferma")
    assert "Rubrica importata" in browser.page_source
    (guardian,) = app.desks.directory.find("mario.rossi@example.org")
    assert guardian.students == ("alunno-5256305",)
