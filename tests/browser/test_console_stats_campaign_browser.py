"""Statistiche and Invio di settembre in a real browser (Chromium through Selenium)
against `credmail web` run as a subprocess: the charts drawn on the server, their tables
and CSV links; the plan, one family's mail, a start through its confirmation page, the
campaign's progress, a cancel through its confirmation. No JavaScript runs on these pages
(the CSP forbids it) and axe-core finds no serious or critical problem on any of them;
screenshots go to docs/screenshots/console-statistiche.png and console-invio*.png."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.browser.test_console_browser import check, heading, submit
from tests.browser.test_console_import_browser import console_app, signed_in
from tests.support.browser import WebServer, axe_violations
from tests.support.campaign_data import school_year
from tests.support.wiring import write_config
from tests.web.test_console_campaign import school
from tests.web.test_console_stats import write_a_term

pytestmark = pytest.mark.integration


def test_statistics_and_the_september_mailing_in_a_real_browser(
    tmp_path: Path, browser: Any, web_server: Callable[..., WebServer]
) -> None:
    app, env = console_app(tmp_path)
    write_a_term(app, datetime.now(UTC))
    school(app, school_year(12, 28, orphans=1))
    console = signed_in(browser, web_server(write_config(tmp_path / "credmail.toml", env)))

    browser.get(f"{console}/statistiche?settimane=52")
    assert heading(browser) == "Statistiche"
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart[role=img]")) == 5
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.stat table caption")) == 5
    assert browser.execute_script("return document.scripts.length") == 0
    check(browser, "statistiche")
    link = browser.find_element(
        By.CSS_SELECTOR, 'a[href$="/statistiche/richieste.csv?settimane=52"]'
    )
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    answer = httpx.get(str(link.get_attribute("href")), cookies=cookies)
    assert answer.status_code == 200 and answer.text.startswith("\ufeffsettimana;")

    browser.get(f"{console}/invio")
    assert heading(browser) == "Invio di settembre"
    assert "[collegamento personale, creato all'invio]" in browser.page_source
    check(browser, "invio")
    submit(browser, "/invio/avvia")
    assert heading(browser) == "Confermare l'avvio dell'invio"
    check(browser, "invio-conferma")
    assert [c.name for c in app.desks.campaign.listing()] == ["settembre"]  # the term's
    submit(browser, "/invio/avvia")
    assert heading(browser).startswith("Invio «settembre-")
    assert browser.find_element(By.ID, "avanzamento").tag_name == "progress"
    check(browser, "invio-avanzamento")
    submit(browser, "/annulla")
    assert heading(browser) == "Confermare l'annullamento dell'invio"
    assert axe_violations(browser) == []
    submit(browser, "/annulla")
    assert "Invio annullato" in browser.page_source
    started, _term = app.desks.campaign.listing()
    assert started.name.startswith("settembre-") and started.status == "cancelled"
