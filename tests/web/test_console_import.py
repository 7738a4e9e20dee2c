"""The console's import of the register's own files (Rubrica > Importa) in process, over a
real SQLite database: read by their bytes like the CLI, the dry run's refusal shown before
anything is written, every unreadable file an Italian message on the form again (400)."""

from __future__ import annotations

import base64
import html
import random
import re
from dataclasses import replace
from datetime import date

import pytest
from starlette.testclient import TestClient

from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.service.desks import Actor
from tests.support.register_files import Guardian, Pupil, classeviva_xls, guardians_xlsx
from tests.support.wiring import make_app
from tests.web.conftest import PASSWORD, ROOT, ClientFactory, sign_in, web_env

pytestmark = pytest.mark.integration

CLI = Actor("root", "cli")
LUCA = Pupil(5256305, "Rossi", "Luca", date(2012, 5, 1), "RSSLCU12E01H501A", year=1)
ADA = Pupil(5256307, "Neri", "Ada", date(2011, 5, 1), "NREADA11E41H501B")
MARIO = Guardian(LUCA.tax_code, "mario.rossi@example.org", "PADRE", "ROSSI", "MARIO", "RSSMRA70")
EVA = Guardian(ADA.tax_code, "", "MADRE", "NERI", "EVA", "NREEVA70")
XLS = "application/vnd.ms-excel"


@pytest.fixture
def console_app(sqlite_url: str) -> App:
    app = make_app(load_settings(None, environ=web_env(sqlite_url)), directory=False)
    app.desks.staff.add("anna", "amministratore", PASSWORD, CLI)
    return app


@pytest.fixture
def admin(console_app: App, client_for: ClientFactory) -> tuple[TestClient, str]:
    client = client_for(console_app)
    return client, sign_in(client, "anna")


def upload(client: TestClient, csrf: str, *files: tuple[str, bytes], **form: str) -> str | None:
    """POST the files; the page's text (entities decoded), or None after a redirect."""
    answer = client.post(
        f"{ROOT}/rubrica/importa",
        data={"csrf_token": csrf, **form},
        files=[("file", (name, data, XLS)) for name, data in files],
    )
    return html.unescape(answer.text) if answer.status_code != 303 else None


def test_the_registers_files_are_previewed_in_italian_then_written_on_confirm(
    console_app: App, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    students = classeviva_xls([LUCA, ADA])
    answer = client.post(
        f"{ROOT}/rubrica/importa",
        data={"csrf_token": csrf},
        files=[
            ("file", ("RMII0063.xls", students, XLS)),
            ("file", ("tutori.xlsx", guardians_xlsx([MARIO, EVA]), XLS)),
        ],
    )
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert "RMII0063.xls" in page and "elenco alunni, 2 righe, intestazione alla riga 2" in page
    assert "alunni: <strong>2</strong> (2 iscritti, 1 nuovi)" in page
    assert "tutori: <strong>2</strong>" in page and "persone aggiunte: <strong>4</strong>" in page
    assert "tutori.xlsx, riga 3: indirizzo mancante" in page  # Eva has no address
    assert console_app.desks.directory.people() == []  # the preview wrote nothing
    assert 'class="done"' not in page  # nothing said to be done yet
    names = re.findall(r'name="nome" value="([^"]+)"', page)
    payloads = re.findall(r'name="dati" value="([^"]+)"', page)
    assert names == ["RMII0063.xls", "tutori.xlsx"] and len(payloads) == 2
    confirm = client.post(
        f"{ROOT}/rubrica/importa/conferma",
        data={"csrf_token": csrf, "nome": names, "dati": payloads},
    )
    assert confirm.status_code == 303, confirm.text
    guardian = console_app.desks.directory.find("mario.rossi@example.org")[0]
    assert guardian.students == ("alunno-5256305",)


def test_a_spreadsheet_is_read_by_its_bytes_whatever_its_name(
    admin: tuple[TestClient, str],
) -> None:
    client, csrf = admin
    page = upload(client, csrf, ("alunni.csv", classeviva_xls([LUCA, ADA])))
    assert page is not None and "Anteprima dell'importazione" in page
    assert "alunni: <strong>2</strong>" in page


@pytest.mark.parametrize(
    ("name", "data", "italian"),
    [
        (
            "alunni.xls",
            classeviva_xls([LUCA])[:3000],
            "non è un file Excel 97-2003 (.xls) leggibile",
        ),
        ("tutori.xlsx", guardians_xlsx([MARIO])[:900], "non è un file Excel (.xlsx) leggibile"),
        ("alunni.csv", b"\x81\x8d\x90", "non è un foglio Excel (.xls, .xlsx) né un file CSV"),
        ("alunni.xls", b"<html><table><tr><td>x</td></tr></table>", "è una pagina web salvata"),
        ("strano.csv", b"Matricola;Cognome tutto\r\n1;Rossi\r\n", "le colonne non sono quelle"),
    ],
)
def test_an_unreadable_file_is_an_italian_message_on_the_form(
    console_app: App, admin: tuple[TestClient, str], name: str, data: bytes, italian: str
) -> None:
    client, csrf = admin
    answer = client.post(
        f"{ROOT}/rubrica/importa",
        data={"csrf_token": csrf},
        files={"file": (name, data, XLS)},
    )
    assert answer.status_code == 400
    assert "Il file non è stato importato" in answer.text
    assert f"{name}: {italian}" in html.unescape(answer.text)
    for english in ("not a readable", "neither", "unknown layout", "HTML"):
        assert english not in answer.text
    assert 'type="file"' in answer.text  # the form again, to choose another file
    assert console_app.desks.directory.people() == []


def test_the_preview_shows_the_refusal_the_confirmation_would_meet(
    console_app: App, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    pupils = [
        Pupil(7000000 + n, "Conti", f"Rino{n}", date(2012, 1, 1), f"CNTRNI12A01H5{n:02d}D")
        for n in range(10)
    ]
    desk = console_app.desks.directory
    desk.import_files([("alunni.xls", classeviva_xls(pupils))], CLI, dry_run=False)
    few = classeviva_xls(pupils[:4])
    page = upload(client, csrf, ("alunni.xls", few))
    assert page is not None
    assert "segnerebbe come non più iscritte 6 delle 10 persone in rubrica (60%)" in page
    assert "più del 20% consentito" in page
    # who would be marked as left, never by the key credmail made up for the register
    assert "Rino9 Conti (senza codice del registro)" in page
    assert "alunno-7000009" not in page
    assert "/rubrica/importa/conferma" not in page  # nothing to confirm
    forced = client.post(
        f"{ROOT}/rubrica/importa/conferma",
        data={"csrf_token": csrf, "nome": "alunni.xls", "dati": base64.b64encode(few).decode()},
    )
    assert forced.status_code == 409 and "segnerebbe come non più iscritte" in forced.text
    assert all(p.active for p in desk.people())


def test_login_codes_given_later_are_shown_as_renamed_people_in_italian(
    console_app: App, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    desk = console_app.desks.directory
    desk.import_files([("alunni.xls", classeviva_xls([LUCA, ADA]))], CLI, dry_run=False)
    coded = [replace(LUCA, code="S1234567A"), replace(ADA, code="S7654321B")]
    page = upload(client, csrf, ("alunni.xls", classeviva_xls(coded)))
    assert page is not None
    assert "persone aggiunte: <strong>0</strong>" in page
    assert "ricevono il codice utente del registro: <strong>2</strong> (non sono nuove)" in page
    assert "<h2>Codici utente che cambiano</h2>" in page
    assert "<li>Luca Rossi: alunno-5256305 → S1234567A</li>" in page
    assert "non più iscritti: <strong>0</strong>" in page and "renamed" not in page
    assert [p.username for p in desk.people()] == ["alunno-5256305", "alunno-5256307"]


def test_usernames_differing_only_in_case_are_refused_in_italian(
    console_app: App, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    header = "role,username,first_name,last_name,birth_date,emails,students\n"
    console_app.desks.directory.import_csv(
        (header + "guardian,g1001,Anna,Rossi,,a@example.org,\n").encode(),
        CLI,
        prune=False,
        dry_run=False,
    )
    data = (header + "guardian,G1001,Ugo,Neri,,u@example.org,\n").encode()
    answer = client.post(
        f"{ROOT}/rubrica/importa", data={"csrf_token": csrf}, files={"file": ("r.csv", data, XLS)}
    )
    assert answer.status_code == 400
    assert (
        "r.csv: codici utente che differiscono solo per maiuscole e minuscole: G1001 / g1001 "
        "(già in rubrica); correggere il file e riprovare" in html.unescape(answer.text)
    )
    assert [p.username for p in console_app.desks.directory.people()] == ["g1001"]


def test_removing_people_is_refused_in_italian_for_the_registers_files(
    admin: tuple[TestClient, str],
) -> None:
    client, csrf = admin
    page = upload(client, csrf, ("alunni.xls", classeviva_xls([LUCA])), rimuovi="si")
    assert page is not None and "vale solo per il CSV della rubrica" in page


def test_the_console_keeps_to_the_configured_size_limit(
    sqlite_url: str, client_for: ClientFactory
) -> None:
    env = web_env(sqlite_url, directory__max_import_bytes="4096")
    app = make_app(load_settings(None, environ=env), directory=False)
    app.desks.staff.add("anna", "amministratore", PASSWORD, CLI)
    client = client_for(app)
    csrf = sign_in(client, "anna")
    students = classeviva_xls([LUCA, ADA])
    assert len(students) > 4096
    answer = client.post(
        f"{ROOT}/rubrica/importa",
        data={"csrf_token": csrf},
        files={"file": ("alunni.xls", students, XLS)},
    )
    assert answer.status_code == 400
    assert "alunni.xls: il file supera i 4 KB ammessi per un'importazione" in html.unescape(
        answer.text
    )


def test_damaged_spreadsheets_never_answer_a_server_error(
    admin: tuple[TestClient, str],
) -> None:
    client, csrf = admin
    rng = random.Random(9)
    data = classeviva_xls([LUCA, ADA])
    for _ in range(12):
        damaged = bytearray(data)
        for _ in range(8):
            damaged[rng.randrange(512, len(damaged))] = rng.randrange(256)
        answer = client.post(
            f"{ROOT}/rubrica/importa",
            data={"csrf_token": csrf},
            files={"file": ("alunni.xls", bytes(damaged), XLS)},
        )
        assert answer.status_code in (200, 400), answer.text[:300]
        if answer.status_code == 400:
            assert "alunni.xls: " in answer.text and "Traceback" not in answer.text
