"""End to end: the register's files imported with the CLI, then a guardian's request answered
with the right child (real Dovecot, aiosmtpd, SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from credmail.entrypoints.cli import main
from credmail.entrypoints.daemon import run_once
from tests.support.register_files import (
    Guardian,
    Pupil,
    classeviva_xls,
    families_csv,
    guardians_xlsx,
    students_csv_cp1252,
)
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, make_app, server_env, server_settings, write_config

pytestmark = pytest.mark.integration

LUCA = Pupil(5256305, "Rossi", "Luca", date(2012, 5, 1), "RSSLCU12E01H501A", year=1)
MARTA = Pupil(5256306, "Rossi", "Marta", date(2014, 5, 1), "RSSMRT14E41H501D", year=3)
ADA = Pupil(5256307, "Neri", "Ada", date(2011, 5, 1), "NREADA11E41H501B", status="Ritirato")
MARIO = Guardian(LUCA.tax_code, "mario.rossi@example.org", "PADRE", "ROSSI", "MARIO", "RSSMRA70")
MARIO2 = Guardian(MARTA.tax_code, "mario.rossi@example.org", "PADRE", "ROSSI", "MARIO", "RSSMRA70")
EVA = Guardian(ADA.tax_code, "eva.neri@example.org", "MADRE", "NERI", "EVA", "NREEVA70")


@pytest.fixture
def config(
    dovecot: Dovecot,
    smtp: SmtpServer,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    env = server_env(dovecot, smtp, db_url)
    env["CREDMAIL_DIRECTORY__MAPPINGS_DIR"] = str(tmp_path / "mappings")
    path = write_config(tmp_path / "credmail.toml", env)
    monkeypatch.setenv("CREDMAIL_CONFIG", str(path))
    for name in list(__import__("os").environ):
        if name.startswith("CREDMAIL_") and name != "CREDMAIL_CONFIG":
            monkeypatch.delenv(name)
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str, expect: int = 0) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == expect, f"exit {code}: {out}{err}"
    return out + err


def test_register_files_then_a_guardians_request_names_the_right_child(
    config: Path,
    dovecot: Dovecot,
    smtp: SmtpServer,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    students = tmp_path / "RMII0063_AC_2025-26.xls"
    students.write_bytes(classeviva_xls([LUCA, MARTA, ADA]))
    guardians = tmp_path / "tutori.xlsx"
    guardians.write_bytes(guardians_xlsx([MARIO, MARIO2, EVA]))
    report = tmp_path / "report.csv"

    out = cli(
        capsys,
        "directory",
        "import",
        str(students),
        str(guardians),
        "--dry-run",
        "--csv",
        str(report),
    )
    assert "Excel 97-2003 (.xls), sheet 'Alunni'; layout classeviva, header on line 2" in out
    assert "students 3 (2 enrolled, 1 new), guardians 2, addresses 2" in out
    assert "dry run, nothing written" in out
    assert cli(capsys, "directory", "list").strip().endswith("0 people")
    with report.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows[0] == ["kind", "code", "file", "line", "username", "detail"]
    assert ["count", "students", "", "", "", "3"] in rows

    out = cli(capsys, "directory", "import", str(students), str(guardians))
    assert "added 5" in out
    shown = cli(capsys, "directory", "show", "alunno-5256307", "--json")
    assert '"active": false' in shown

    app = make_app(server_settings(dovecot, smtp, db_url), directory=False)
    dovecot.append(
        request(
            "mario.rossi@example.org",
            "Richiesta credenziali studente",
            body="Buongiorno, le credenziali di mia figlia Marta. Grazie.",
        )
    )
    dovecot.append(request("eva.neri@example.org", "Richiesta credenziali studente"))
    run_once(app)

    (reply,) = smtp.handler.parsed()
    assert reply["To"] == "mario.rossi@example.org"
    text = " ".join(body_text(reply).split())
    assert "Marta Rossi" in text and "Luca" not in text  # Marta, not Luca
    assert "alunno-" not in text  # a made-up username is never shown as a code
    (held,) = app.review.pending()
    assert held.reasons == ("not_enrolled",)


def test_yearly_refresh_from_a_windows_1252_csv_and_a_families_csv(
    config: Path, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "alunni-2025.csv"
    zoe = Pupil(6000002, "Bianchi", "Zoè", date(2015, 1, 1), "BNCZOE15A41H501F", year=2)
    first.write_bytes(students_csv_cp1252([LUCA, MARTA, ADA, zoe]))
    out = cli(capsys, "directory", "import", str(first))
    assert "semicolon (';'), text in Windows-1252" in out

    nuovo = Pupil(6000001, "Conti", "Nicolò", date(2015, 1, 1), "CNTNCL15A01H501E", year=2)
    second = tmp_path / "alunni-2026.csv"
    second.write_bytes(students_csv_cp1252([LUCA, nuovo, zoe]))
    out = cli(capsys, "directory", "import", str(second), "--force")
    assert "since the last import: added 1, changed addresses 0, left 1" in out
    assert "marked inactive: alunno-5256306 (student, Marta Rossi)" in out
    listing = cli(capsys, "directory", "show", "alunno-6000001", "--json")
    assert '"new": true' in listing and "Nicolò" in listing

    families = tmp_path / "famiglie.csv"
    families.write_bytes(families_csv([(LUCA, [MARIO])]))
    out = cli(
        capsys, "directory", "import", str(families), "--format", "guardians", "--dry-run", expect=1
    )
    assert "layout families" in out
    assert "dry run: refusing to retire 3 of 5 people (60%)" in out  # as the real run would


def test_mapping_init_then_import_with_the_saved_mapping(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "export.csv"
    odd.write_text("Alunno cognome;Alunno nome;Matricola\r\nRossi;Luca;77\r\n", encoding="utf-8")
    out = cli(capsys, "directory", "import", str(odd), expect=1)
    assert "credmail directory mapping init" in out
    out = cli(capsys, "directory", "mapping", "init", str(odd), "--name", "scuola")
    saved = tmp_path / "mappings" / "scuola.toml"
    assert str(saved) in out
    text = saved.read_text(encoding="utf-8")
    text = text.replace('"Alunno cognome" = ""', '"Alunno cognome" = "last_name"')
    text = text.replace('"Alunno nome" = ""', '"Alunno nome" = "first_name"')
    saved.write_text(text.replace('"Matricola" = ""', '"Matricola" = "pupil_id"'))
    cli(capsys, "directory", "mapping", "init", str(odd), "--name", "scuola", expect=1)
    out = cli(capsys, "directory", "import", str(odd), "--mapping", "scuola")
    assert "added 1" in out
    assert "Luca Rossi" in cli(capsys, "directory", "show", "alunno-77", "--json").replace(
        '",\n  "last_name": "', " "
    )


def stdin_of(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_standard_input_reads_a_register_xls_by_its_bytes_like_a_named_file(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stdin_of(monkeypatch, classeviva_xls([LUCA, MARTA, ADA]))
    out = cli(capsys, "directory", "import", "-", "--dry-run")
    assert "standard input: Excel 97-2003 (.xls), sheet 'Alunni'; layout classeviva" in out
    assert "dry run, nothing written: added 3" in out
    misnamed = tmp_path / "alunni.csv"  # a name says nothing: the bytes are an .xlsx
    misnamed.write_bytes(guardians_xlsx([MARIO, EVA]))
    stdin_of(monkeypatch, classeviva_xls([LUCA, MARTA, ADA]))
    out = cli(capsys, "directory", "import", "-", str(misnamed))
    assert f"{misnamed}: Excel (.xlsx)" in out and "added 5" in out


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (classeviva_xls([LUCA])[:3000], "not a readable .xls file ("),
        (guardians_xlsx([MARIO])[:900], "not a readable .xlsx file ("),
        (b"\x81\x8d\x90", "neither UTF-8 nor Windows-1252"),
        (b"", "the file is empty"),
    ],
)
def test_an_unreadable_standard_input_is_one_line_naming_it(
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: bytes,
    reason: str,
) -> None:
    stdin_of(monkeypatch, data)
    out = cli(capsys, "directory", "import", "-", expect=1)
    (line,) = out.splitlines()
    assert line.startswith("credmail: standard input: ") and reason in line
    assert line.endswith("; nothing imported")


def test_a_dry_run_refuses_the_retirement_the_real_run_refuses_with_its_exit_status(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pupils = [
        Pupil(7000000 + n, "Conti", f"Rino{n}", date(2012, 1, 1), f"CNTRNI12A01H5{n:02d}D")
        for n in range(10)
    ]
    everyone, few = tmp_path / "alunni.xls", tmp_path / "pochi.xls"
    everyone.write_bytes(classeviva_xls(pupils))
    few.write_bytes(classeviva_xls(pupils[:4]))
    cli(capsys, "directory", "import", str(everyone))
    dry = cli(capsys, "directory", "import", str(few), "--dry-run", expect=1)
    real = cli(capsys, "directory", "import", str(few), expect=1)
    refusal = "refusing to retire 6 of 10 people (60%), more than directory.max_prune_share"
    assert f"credmail: dry run: {refusal}" in dry and f"credmail: {refusal}" in real
    assert "would mark inactive: alunno-7000009 (student, Rino9 Conti)" in dry
    assert "dry run, nothing written" not in dry
    assert cli(capsys, "directory", "list").count("(inactive)") == 0
    assert "dry run, nothing written: " in cli(
        capsys, "directory", "import", str(few), "--dry-run", "--force"
    )


def test_files_past_the_configured_limits_are_refused_in_one_line(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CREDMAIL_DIRECTORY__MAX_IMPORT_BYTES", "4096")
    monkeypatch.setenv("CREDMAIL_DIRECTORY__MAX_IMPORT_ROWS", "10")
    students = tmp_path / "alunni.xls"
    students.write_bytes(classeviva_xls([LUCA, MARTA, ADA]))
    assert students.stat().st_size > 4096
    too_big = "larger than the 4 KiB an import reads (directory.max_import_bytes)"
    out = cli(capsys, "directory", "import", str(students), expect=1)
    assert out == f"credmail: {students}: {too_big}; nothing imported\n"
    stdin_of(monkeypatch, students.read_bytes())
    out = cli(capsys, "directory", "import", "-", expect=1)
    assert out == f"credmail: standard input: {too_big}; nothing imported\n"
    many = tmp_path / "alunni.csv"
    pupils = [replace(LUCA, pupil_id=LUCA.pupil_id + n) for n in range(12)]
    many.write_bytes(students_csv_cp1252(pupils))
    out = cli(capsys, "directory", "import", str(many), expect=1)
    assert out == (
        f"credmail: {many}: more than 10 rows (directory.max_import_rows); nothing imported\n"
    )


def test_usernames_differing_only_in_case_refuse_the_import_and_its_dry_run(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "role,username,first_name,last_name,birth_date,emails,students\n"
    (tmp_path / "a.csv").write_text(header + "guardian,g1001,Anna,Rossi,,a@example.org,\n")
    (tmp_path / "b.csv").write_text(header + "guardian,G1001,Ugo,Neri,,u@example.org,\n")
    cli(capsys, "directory", "import", str(tmp_path / "a.csv"))
    for dry in ((), ("--dry-run",)):
        out = cli(capsys, "directory", "import", str(tmp_path / "b.csv"), *dry, expect=1)
        assert out.splitlines()[-1] == (
            f"credmail: {tmp_path / 'b.csv'}: usernames that differ only in case: "
            "G1001 / g1001 (on file); correct the file; nothing imported"
        )
    assert cli(capsys, "directory", "list").strip().endswith("1 people")
