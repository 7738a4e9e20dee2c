"""The secretariat's working day in a real browser (Debian's Chromium through Selenium)
against `credmail web` run as a subprocess, with a real Dovecot and aiosmtpd and the
daemon's run-once: sign in, open a held request, approve it and see the reply arrive at
the SMTP server, open an override's confirmation and approve a student instead, reject
with notice, discard, work a register task (its message to the family shown in its mail
before it is sent), import a directory with preview, read the audit log. axe-core finds
no serious or critical problem on any page; screenshots go to
docs/screenshots/console-*.png (shown in the README)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from credmail.entrypoints.daemon import run_once
from credmail.service.ports import AuditFilter, RegisterTask
from tests.support.browser import (
    SCREENSHOTS,
    WebServer,
    axe_violations,
    mailbox_console_app,
    replaced,
)
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import write_config

pytestmark = pytest.mark.integration

PASSWORD = "una password lunga"
DESKTOP = (1280, 900)
CSV = (
    "role,username,first_name,last_name,birth_date,emails,students,class\n"
    "teacher,T9001,Nuova,Docente,,nuova.docente@example.org,,\n"
)


def shot(driver: Any, name: str) -> None:
    """The whole page at desktop width (the console is used at a desk)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(DESKTOP[0], max(DESKTOP[1], int(height) + 120))
    driver.save_screenshot(str(SCREENSHOTS / f"console-{name}.png"))
    driver.set_window_size(*DESKTOP)


def check(driver: Any, name: str) -> None:
    assert axe_violations(driver) == [], name
    shot(driver, name)


def heading(driver: Any) -> str:
    return str(driver.find_element(By.TAG_NAME, "h1").text)


def submit(driver: Any, form_action_suffix: str) -> None:
    """Press the form's button and wait for the next page."""
    form = driver.find_element(By.CSS_SELECTOR, f'form[action$="{form_action_suffix}"]')
    press(driver, form)


def sign_in(driver: Any, console: str, name: str) -> None:
    """Open the console's sign-in page and sign in as `name`."""
    driver.get(f"{console}/accesso")
    driver.find_element(By.ID, "nome").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(driver, "/accesso")


def press(driver: Any, form: Any) -> None:
    button = form.find_element(By.CSS_SELECTOR, "button[type=submit]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    WebDriverWait(driver, 15).until(replaced(button))


def mail_to(smtp: SmtpServer) -> list[str]:
    return [rcpt for _from, rcpts, _raw in smtp.handler.messages for rcpt in rcpts]


def test_the_secretariat_works_the_queue_in_a_real_browser(
    tmp_path: Path,
    browser: Any,
    web_server: Callable[..., WebServer],
    dovecot: Dovecot,
    smtp: SmtpServer,
) -> None:
    app, env = mailbox_console_app(tmp_path, dovecot, smtp, "anna", "amministratore")
    shared = "famiglia.bianchi@example.org"  # two guardians: the request is ambiguous
    dovecot.append(request(shared, body="Buongiorno, vorrei le credenziali."))
    dovecot.append(request("sconosciuto@example.net", body="Vorrei le credenziali."))
    dovecot.append(request("altro.sconosciuto@example.net", body="Pubblicità."))
    dovecot.append(request(shared, "Richiesta credenziali studente", body="Per i nostri figli."))
    run_once(app)
    ambiguous, unknown, spam, student = (item.id for item in app.review.pending())
    now = app.clock()
    with app.uow() as uow:
        task_id = uow.tasks.add(
            RegisterTask(
                0,
                "G1001",
                "adult",
                "guardian",
                "Mario",
                "Rossi",
                "mario.rossi@example.org",
                now,
                now,
            ),
            "sel-browser",
        )
        uow.commit()
    server = web_server(write_config(tmp_path / "credmail.toml", env))
    browser.set_window_size(*DESKTOP)
    console = f"{server.url}/console"

    browser.get(f"{console}/")
    assert heading(browser) == "Accesso"  # signed out: the sign-in page, nothing else
    check(browser, "accesso")
    browser.find_element(By.ID, "nome").send_keys("anna")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(browser, "/accesso")
    assert heading(browser) == "Cruscotto"
    assert "anna (amministratore)" in browser.page_source
    check(browser, "cruscotto")

    browser.find_element(By.LINK_TEXT, "Da rivedere").click()
    assert "4 richieste in attesa" in browser.page_source
    assert "L'indirizzo appartiene a più persone" in browser.page_source
    check(browser, "da-rivedere")

    browser.find_element(By.LINK_TEXT, f"#{ambiguous}").click()
    assert heading(browser) == f"Richiesta {ambiguous}"
    assert "Buongiorno, vorrei le credenziali." in browser.page_source
    assert "Anna Bianchi" in browser.page_source and "Paolo Bianchi" in browser.page_source
    check(browser, "richiesta")
    form = browser.find_element(By.XPATH, "//form[.//input[@name='persona' and @value='G1002']]")
    assert form.find_element(By.NAME, "indirizzo").get_attribute("value") == shared
    press(browser, form)
    assert "Richiesta approvata" in browser.page_source
    run_once(app)
    assert mail_to(smtp) == [shared]  # the link arrived at the SMTP server

    browser.get(f"{console}/revisione/{student}")
    assert "Approva per lo studente Giulia Bianchi" in browser.page_source
    assert "Approva per Anna Bianchi" not in browser.page_source  # an override: 2nd step
    browser.find_element(By.LINK_TEXT, "Valuta l'approvazione per Anna Bianchi").click()
    assert "riceverà il collegamento per le proprie credenziali personali" in browser.page_source
    check(browser, "conferma-eccezione")
    browser.find_element(By.LINK_TEXT, "Annulla e torna alla richiesta").click()
    form = browser.find_element(By.XPATH, "//form[.//input[@name='persona' and @value='S2002']]")
    press(browser, form)
    assert "Richiesta approvata" in browser.page_source

    browser.get(f"{console}/revisione/{unknown}")
    browser.find_element(By.ID, "nota-respingi").send_keys("Indirizzo non registrato.")
    browser.find_element(By.CSS_SELECTOR, "input[name=avvisa][value=si]").click()
    submit(browser, f"/revisione/{unknown}/respingi")
    assert "il mittente riceverà un avviso" in browser.page_source
    browser.get(f"{console}/revisione/{spam}")
    submit(browser, f"/revisione/{spam}/archivia")
    assert "Richiesta archiviata" in browser.page_source
    assert "0 richieste in attesa" in browser.page_source
    run_once(app)
    assert mail_to(smtp) == [shared, shared, "sconosciuto@example.net"]

    browser.get(f"{console}/revisione/{spam}/archivia")  # a GET decides nothing
    browser.get(f"{console}/registro")
    assert "Mario Rossi" in browser.page_source
    check(browser, "da-fare-nel-registro")
    browser.find_element(By.ID, f"nota-{task_id}").send_keys("Reinviate dal registro")
    message = "Le credenziali arriveranno entro oggi."
    browser.find_element(By.ID, f"messaggio-{task_id}").send_keys(message)
    submit(browser, f"/registro/{task_id}/fatto")
    assert heading(browser) == "Controllare il messaggio prima dell'invio"
    assert message in browser.page_source and len(app.desks.tasks.listing()) == 1
    check(browser, "messaggio-anteprima")
    press(browser, browser.find_element(By.XPATH, "//form[.//input[@name='conferma']]"))
    assert "Attività segnata come eseguita" in browser.page_source
    assert app.desks.tasks.listing() == []
    run_once(app)
    (notice,) = [raw for _f, rcpts, raw in smtp.handler.messages if "mario.rossi" in rcpts[0]]
    assert message.encode() in notice and b"Reinviate dal registro" not in notice

    browser.get(f"{console}/rubrica?q=bianchi")
    assert "G1002" in browser.page_source and "G1003" in browser.page_source
    check(browser, "rubrica")
    browser.find_element(By.LINK_TEXT, "Bianchi Anna").click()
    assert "Studenti collegati" in browser.page_source
    check(browser, "persona")
    browser.get(f"{console}/rubrica?q=x")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Importa la rubrica o i file del registro").click()
    check(browser, "importa")
    people = tmp_path / "nuovi.csv"
    people.write_text(CSV)
    browser.find_element(By.ID, "file").send_keys(str(people))
    submit(browser, "/rubrica/importa")
    assert heading(browser) == "Anteprima dell'importazione"
    assert app.desks.directory.find("T9001") == []
    check(browser, "importa-anteprima")
    submit(browser, "/rubrica/importa/conferma")
    assert "Rubrica importata" in browser.page_source
    assert [p.username for p in app.desks.directory.find("T9001")] == ["T9001"]

    browser.get(f"{console}/posta?stato=sent")
    assert "famiglia.bianchi@example.org" in browser.page_source
    check(browser, "posta-in-uscita")

    browser.find_element(By.LINK_TEXT, "Registro attività").click()
    for text in (
        "Richiesta approvata",
        "Richiesta respinta",
        "Richiesta archiviata",
        "Attività del registro eseguita",
        "Rubrica importata",
    ):
        assert text in browser.page_source, text
    check(browser, "registro-attivita")
    browser.get(f"{console}/personale")
    check(browser, "personale")

    actions = [e.action for e in app.desks.audit.listing(AuditFilter(actor="anna"))[0]]
    assert {
        "review.approved",
        "review.rejected",
        "review.discarded",
        "task.done",
        "directory.import",
        "sign_in",
    } <= set(actions)
    submit(browser, "/esci")
    assert heading(browser) == "Accesso"
    browser.get(f"{console}/attivita")
    assert heading(browser) == "Accesso"
