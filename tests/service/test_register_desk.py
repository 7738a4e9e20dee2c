"""The directory desk over the register's files: preview, apply, and the yearly refresh."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from credmail.adapters.spreadsheets import SpreadsheetFiles
from credmail.service.desks import Actor, DirectoryDesk
from credmail.service.desks.directory import RegisterPreview
from credmail.service.import_errors import ImportRefused
from tests.fakes import FakeClock, FakeDirectoryAdmin, FakeUnitOfWorkFactory
from tests.support.register_files import Guardian, Pupil, classeviva_xls, guardians_xlsx

ROME = ZoneInfo("Europe/Rome")
CLERK = Actor("segreteria", "cli")

LUCA = Pupil(5256305, "Rossi", "Luca", date(2012, 5, 1), "RSSLCU12E01H501A", year=2)
ADA = Pupil(5256306, "Neri", "Ada", date(2011, 5, 1), "NREADA11E41H501B", year=3)
UGO = Pupil(5256307, "Gallo", "Ugo", date(2010, 5, 1), "GLLUGO10E01H501C", year=3)
MARIO = Guardian(LUCA.tax_code, "mario.rossi@example.org", "PADRE", "Rossi", "Mario", "RSSMRA70")
EVA = Guardian(ADA.tax_code, "eva.neri@example.org", "MADRE", "Neri", "Eva", "NREEVA70")
PIA = Guardian(UGO.tax_code, "pia.gallo@example.org", "MADRE", "Gallo", "Pia", "GLLPIA70")


class School:
    def __init__(self, max_share: float = 1.0) -> None:
        self.uow = FakeUnitOfWorkFactory()
        self.desk = DirectoryDesk(
            FakeDirectoryAdmin(self.uow), FakeClock(), ROME, max_share, sheets=SpreadsheetFiles()
        )

    def preview(self, pupils: list[Pupil], guardians: list[Guardian]) -> RegisterPreview:
        files = [("alunni.xls", classeviva_xls(pupils))]
        if guardians:
            files.append(("tutori.xlsx", guardians_xlsx(guardians)))
        return self.desk.preview_register(files)

    def load(self, pupils: list[Pupil], guardians: list[Guardian]) -> RegisterPreview:
        preview = self.preview(pupils, guardians)
        assert self.desk.apply_register(preview, CLERK).written
        return preview

    def person(self, username: str) -> tuple[bool, bool]:
        view = self.desk.person(username)
        return view.active, view.new_student


def kinds(preview: RegisterPreview, kind: str) -> set[str]:
    return {c.username for c in preview.changed(kind)}


def test_the_preview_writes_nothing_and_apply_writes_it() -> None:
    school = School()
    preview = school.preview([LUCA, ADA], [MARIO, EVA])
    assert school.desk.people() == []
    counts = preview.counts
    assert (counts["students"], counts["guardians"], counts["addresses"]) == (2, 2, 2)
    assert kinds(preview, "added") == {r.username for r in preview.records}
    school.desk.apply_register(preview, CLERK)
    guardian = next(p for p in school.desk.people() if p.first_name == "Mario")
    assert guardian.students == ("alunno-5256305",)
    assert guardian.emails == ("mario.rossi@example.org",)


def test_first_import_marks_only_first_years_new() -> None:
    school = School()
    first_year = replace(LUCA, year=1)
    preview = school.load([first_year, ADA], [MARIO, EVA])
    assert preview.counts["new_students"] == 1
    assert school.person("alunno-5256305") == (True, True)
    assert school.person("alunno-5256306") == (True, False)


def test_yearly_refresh_left_new_and_changed_address() -> None:
    school = School()
    school.load([LUCA, ADA, UGO], [MARIO, EVA, PIA])
    newcomer = Pupil(6000001, "Conti", "Rino", date(2012, 1, 1), "CNTRNI12A01H501D", year=2)
    withdrawn = replace(ADA, status="Ritirato")
    moved = replace(MARIO, email="mario@nuovo.example.org")
    bruno = Guardian(newcomer.tax_code, "bruno.conti@example.org", "PADRE", "Conti", "Bruno")

    preview = school.preview([LUCA, withdrawn, newcomer], [moved, EVA, bruno])  # Ugo is gone

    assert kinds(preview, "left") == {"alunno-5256306", "alunno-5256307"}
    assert kinds(preview, "new_student") == {"alunno-6000001"}
    assert {c.detail for c in preview.changed("address_changed")} == {
        "mario.rossi@example.org -> mario@nuovo.example.org"
    }
    assert "alunno-6000001" in kinds(preview, "added")
    result = school.desk.apply_register(preview, CLERK)
    assert result.summary.retired == 1  # Ugo, absent from the file: kept, inactive
    assert school.person("alunno-5256306") == (False, False)
    assert school.person("alunno-5256307") == (False, False)
    assert school.person("alunno-6000001") == (True, True)
    assert school.person("alunno-5256305") == (True, False)
    assert any(p.first_name == "Pia" for p in school.desk.people())  # never deleted

    back = school.preview([LUCA, ADA, newcomer], [moved, EVA, bruno])
    assert kinds(back, "returned") == {"alunno-5256306"}


def test_a_credmail_csv_import_without_new_clears_the_flag() -> None:
    school = School()
    school.load([replace(LUCA, year=1)], [MARIO])
    assert school.person("alunno-5256305") == (True, True)
    csv = (
        "role,username,first_name,last_name,birth_date,emails,students\n"
        "student,alunno-5256305,Luca,Rossi,2012-05-01,,\n"
    )
    school.desk.import_csv(csv.encode(), CLERK, prune=False, dry_run=False)
    assert school.person("alunno-5256305") == (True, False)


def test_retiring_too_many_is_refused_without_force() -> None:
    school = School(max_share=0.2)
    school.load([LUCA, ADA, UGO], [])
    preview = school.preview([LUCA], [])
    refused = school.desk.apply_register(preview, CLERK)
    assert refused.refusal is not None and "retire 2 of 3" in refused.refusal
    assert school.person("alunno-5256306") == (True, False)
    assert school.desk.apply_register(preview, CLERK, force=True).written
    assert school.person("alunno-5256306") == (False, False)


def test_a_guardian_sheet_alone_retires_nobody_and_joins_only_what_it_can() -> None:
    school = School()
    school.load([LUCA, ADA], [])
    preview = school.desk.preview_register([("tutori.xlsx", guardians_xlsx([MARIO, EVA]))])
    assert preview.retire is False and not preview.changed("left")
    # pupils keyed by their id cannot be found from a tax code alone: import both together
    assert [p.code for p in preview.problems] == ["unknown_pupil", "unknown_pupil"]
    assert "together with the student list" in preview.problems[0].detail
    school.desk.apply_register(preview, CLERK)
    assert len(school.desk.people()) == 2


def test_report_rows_carry_problems_and_changes() -> None:
    school = School()
    bad = replace(EVA, email="eva@pec.it")
    rows = school.preview([LUCA, ADA], [MARIO, bad]).report_rows()
    assert rows[0] == ("kind", "code", "file", "line", "username", "detail")
    problem = next(r for r in rows if r[0] == "problem")
    assert problem[1:4] == ("pec_address", "tutori.xlsx", "3")
    assert any(r[:2] == ("change", "added") for r in rows)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("d.csv", b"role,username,first_name,last_name,birth_date,emails,students\n", "credmail"),
        ("d.csv", b"role;username;first_name;last_name;birth_date;emails;students\r\n", "credmail"),
        ("d.csv", b"Id Alunno;Cognome;Nome\r\n", "register"),
        ("d.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "register"),
        ("standard input", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "register"),
        ("standard input", b"PK\x03\x04", "register"),
        ("d.xlsx", b"role,username,first_name,last_name,birth_date,emails,students\n", "credmail"),
        ("standard input", b"\x81\x8d", "register"),  # not text: the reader says so
    ],
)
def test_file_format(name: str, data: bytes, expected: str) -> None:
    assert School().desk.file_format(name, data) == expected


def test_a_dry_run_meets_the_refusal_of_the_real_run_and_writes_nothing() -> None:
    school = School(max_share=0.2)
    school.load([LUCA, ADA, UGO], [MARIO, EVA, PIA])
    preview = school.preview([LUCA], [MARIO])
    dry = school.desk.apply_register(preview, CLERK, dry_run=True)
    assert dry.dry_run and not dry.written
    assert dry.refusal is not None and dry.refusal.startswith("refusing to retire 2 of 6")
    assert dry.summary.retired == 2
    assert all(p.active for p in school.desk.people())
    real = school.desk.apply_register(preview, CLERK)
    assert real.refusal == dry.refusal and not real.written
    forced = school.desk.apply_register(preview, CLERK, dry_run=True, force=True)
    assert forced.refusal is None and not forced.written
    assert all(p.active for p in school.desk.people())


def test_a_reimport_with_login_codes_renames_instead_of_adding_and_retiring() -> None:
    school = School(max_share=0.2)
    school.load([replace(LUCA, year=1), ADA], [MARIO, EVA])
    coded = [replace(LUCA, year=1, code="S1234567A"), replace(ADA, code="S7654321B")]
    preview = school.preview(coded, [replace(MARIO, code="G1234567A"), EVA])

    assert kinds(preview, "renamed") == {"S1234567A", "S7654321B", "G1234567A"}
    assert {c.detail for c in preview.changed("renamed")} >= {"alunno-5256305 -> S1234567A"}
    assert not preview.changed("added") and not preview.changed("left")
    assert preview.counts["renamed"] == 3 and preview.counts["new_students"] == 1  # Luca, 1st year
    result = school.desk.apply_register(preview, CLERK)  # nobody retired: no refusal
    assert result.written and (result.summary.added, result.summary.renamed) == (0, 3)
    assert {p.username for p in school.desk.people()} == {
        "S1234567A",
        "S7654321B",
        "G1234567A",
        next(r.username for r in preview.records if r.first_name == "Eva"),
    }
    assert school.desk.person("G1234567A").students == ("S1234567A",)


def test_usernames_that_differ_only_in_case_are_refused_in_one_line() -> None:
    school = School()
    header = "role,username,first_name,last_name,birth_date,emails,students\n"
    twice = (
        header
        + "guardian,G1001,Anna,Rossi,,a@example.org,\nguardian,g1001,Ugo,Neri,,u@example.org,\n"
    )
    for dry_run in (True, False):
        with pytest.raises(ImportRefused) as refused:
            school.desk.import_files([("d.csv", twice.encode())], CLERK, dry_run=dry_run)
        assert str(refused.value) == (
            "d.csv: usernames that differ only in case: G1001 / g1001; correct the file"
        )
        assert "maiuscole e minuscole: G1001 / g1001;" in refused.value.for_staff
    school.desk.import_csv(
        (header + "student,s1234567a,Luca,Rossi,2014-05-01,,\n").encode(),
        CLERK,
        prune=False,
        dry_run=False,
    )
    with pytest.raises(ImportRefused, match=r"S1234567A / s1234567a \(on file\)"):
        school.preview([replace(LUCA, code="S1234567A")], [])
    assert [p.username for p in school.desk.people()] == ["s1234567a"]
