"""The reset page for an Arabic-speaking guardian in a real browser (Debian's Chromium
through Selenium, `credmail web` as a subprocess): Italian first, then the Arabic section
laid out right to left; axe-core finds no serious or critical problem (issue 19).
Screenshots go to docs/screenshots/ (reset-confirm-ar.png, reset-done-ar.png)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import update

from credmail.adapters.db.models import PersonRow
from credmail.config import load_settings
from tests.support.browser import WebServer, axe_violations, follow, screenshot
from tests.support.links import issue_token
from tests.support.wiring import IDENTITY, make_app, write_config

pytestmark = pytest.mark.integration

# Where the text of an element starts and ends, and the box it sits in (CSS pixels).
TEXT_EDGES = """
const el = arguments[0];
const range = document.createRange();
range.selectNodeContents(el);
const text = range.getBoundingClientRect();
const box = el.getBoundingClientRect();
const style = getComputedStyle(el);
return {left: text.left - box.left - parseFloat(style.paddingLeft),
        right: box.right - text.right - parseFloat(style.paddingRight),
        width: text.width, direction: style.direction};
"""


def edges(driver: Any, css: str) -> dict[str, Any]:
    return dict(driver.execute_script(TEXT_EDGES, driver.find_element(By.CSS_SELECTOR, css)))


def test_the_arabic_reset_page_reads_right_to_left_and_passes_axe(
    tmp_path: Path, browser: Any, web_server: Callable[..., WebServer]
) -> None:
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": f"sqlite:///{tmp_path / 'credmail.db'}",
        "CREDMAIL_WEB__INVALID_MIN_SECONDS": "0",
    }
    app = make_app(load_settings(None, environ=env))
    with app.uow() as uow:
        uow.session.execute(
            update(PersonRow).where(PersonRow.username == "G1001").values(language="ar")
        )
        uow.commit()
    token = issue_token(app, "G1001")
    server = web_server(write_config(tmp_path / "credmail.toml", env))

    browser.get(f"{server.url}/reset/{token}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Conferma la richiesta di credenziali"
    section = browser.find_element(By.CSS_SELECTOR, "section.translation")
    assert (section.get_attribute("lang"), section.get_attribute("dir")) == ("ar", "rtl")
    assert section.find_element(By.TAG_NAME, "h2").text == "تأكيد طلب بيانات الدخول"
    # Italian first: the Arabic section below the Italian heading, the button below both.
    h1 = browser.find_element(By.TAG_NAME, "h1").rect
    button = browser.find_element(By.CSS_SELECTOR, "button[type=submit]")
    assert h1["y"] < section.rect["y"] < button.rect["y"]
    # Right to left for real: the Arabic heading hugs the right edge, the Italian the left.
    arabic = edges(browser, "section.translation h2")
    italian = edges(browser, "main h1")
    assert arabic["direction"] == "rtl" and italian["direction"] == "ltr"
    assert arabic["right"] < 2 < arabic["left"]
    assert italian["left"] < 2 < italian["right"]
    border = browser.execute_script(
        "const s = getComputedStyle(arguments[0]);return [s.borderRightWidth, s.borderLeftWidth];",
        section,
    )
    assert border == ["4px", "0px"]  # border-inline-start lands on the right
    label = button.find_element(By.CSS_SELECTOR, "span.also")
    assert (label.get_attribute("lang"), label.text) == ("ar", "تأكيد الطلب")
    assert "G1001" in section.text  # the user code, isolated in <bdi>, reads as written
    assert axe_violations(browser) == []
    screenshot(browser, "reset-confirm-ar")

    follow(browser, button)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Richiesta confermata"
    done = browser.find_element(By.CSS_SELECTOR, "section.translation")
    assert done.get_attribute("dir") == "rtl"
    assert done.find_element(By.TAG_NAME, "h2").text == "تم تأكيد الطلب"
    assert axe_violations(browser) == []
    screenshot(browser, "reset-done-ar")

    follow(browser, browser.find_element(By.CSS_SELECTOR, 'nav.languages a[hreflang="it"]'))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Collegamento già usato"
    assert browser.find_elements(By.CSS_SELECTOR, "section.translation") == []
    assert axe_violations(browser) == []
