"""Every CSV the CLI writes, fed hostile values (names, usernames and file names that a
spreadsheet would run as formulas), read back as the spreadsheet would: each such cell
starts with a quote, plain numbers and ordinary values (addresses, dates) stay as they are.
(The console's activity log: tests/service/test_staff_desk.py.)"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from tests.integration.test_register_import import cli
from tests.support.register_files import Pupil, classeviva_xls
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env, write_config

pytestmark = pytest.mark.integration

HYPERLINK = '=HYPERLINK("http://x","y")'
CMD = "=CMD|' /C calc'!A0"


@pytest.fixture
def configured(
    dovecot: Dovecot,
    smtp: SmtpServer,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    path = write_config(tmp_path / "credmail.toml", server_env(dovecot, smtp, sqlite_url))
    monkeypatch.setenv("CREDMAIL_CONFIG", str(path))
    monkeypatch.chdir(tmp_path)
    return path


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter=";"))


def hostile_directory() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)  # credmail's own CSV, as a careless spreadsheet saved it
    writer.writerow(["role", "username", "first_name", "last_name", "birth_date", "emails",
                     "students", "class", "new"])  # fmt: skip
    writer.writerow(["student", CMD, HYPERLINK, "Rossi", "2014-05-01", "", "", "1A", "sì"])
    writer.writerow(["student", "-1", "@SUM(1)", "+1", "2014-05-01", "", "", "1A", "sì"])
    writer.writerow(["guardian", "@SUM(1)", "+Mario", "Rossi", "", "mario@example.org",
                     f"{CMD};-1", "", ""])  # fmt: skip
    return out.getvalue().encode()


def test_campaign_plan_and_report_neutralise_formula_cells(
    configured: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rubrica.csv").write_bytes(hostile_directory())
    assert "added 3" in cli(capsys, "directory", "import", "rubrica.csv")

    cli(capsys, "campaign", "plan", "settembre", "--csv", "piano.csv")
    plan = read_rows(tmp_path / "piano.csv")
    assert plan[0] == ["indirizzo", "studente", "nome", "genitori/tutori", "avviso"]
    assert ["mario@example.org", "-1", "'@SUM(1) +1", "'+Mario Rossi", ""] in plan
    assert ["mario@example.org", f"'{CMD}", f"'{HYPERLINK} Rossi", "'+Mario Rossi", ""] in plan

    cli(capsys, "campaign", "start", "settembre")
    cli(capsys, "campaign", "report", "settembre", "--csv", "stato.csv")
    report = read_rows(tmp_path / "stato.csv")
    assert report[0] == ["indirizzo", "studente", "genitori/tutori", "stato", "in coda", "inviata"]
    assert sorted(row[:4] for row in report[1:]) == [
        ["mario@example.org", "'" + CMD, "'@SUM(1)", "da inviare"],
        ["mario@example.org", "-1", "'@SUM(1)", "da inviare"],
    ]


def test_the_register_import_report_neutralises_formula_cells(
    configured: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pupil = Pupil(5256305, "Rossi", "Luca", date(2014, 5, 1), "RSSLCU14E01H501A", code=CMD)
    hostile = tmp_path / "@SUM(1).xls"
    hostile.write_bytes(classeviva_xls([pupil]))
    on_stdout = cli(capsys, "directory", "import", hostile.name, "--dry-run", "--csv", "-")
    assert "problem;login_code;'@SUM(1).xls;3;" in on_stdout
    out = cli(capsys, "directory", "import", hostile.name, "--dry-run", "--csv", "r.csv")
    assert "report written to r.csv" in out
    rows = read_rows(tmp_path / "r.csv")
    code = CMD.upper()
    problem = ["problem", "login_code", "'@SUM(1).xls", "3", "",
               f"student login {code} is not S + 7 digits + letter"]  # fmt: skip
    assert problem in rows
    assert ["change", "added", "", "", "'" + code, "student Luca Rossi"] in rows
    assert ["count", "students", "", "", "", "1"] in rows
