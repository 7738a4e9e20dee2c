"""A re-import that gives the login codes renames the people credmail filed under a made-up
reference (pure: the register's files and the usernames on file in, the renames out)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from credmail.adapters.spreadsheets import SpreadsheetFiles
from credmail.service.register_import import RegisterData, read_register
from credmail.service.register_rows import guardian_reference, student_reference
from tests.support.register_files import Guardian, Pupil, classeviva_xls, families_csv

TODAY = date(2026, 9, 1)
SHEETS = SpreadsheetFiles()
LUCA = Pupil(5256305, "Rossi", "Luca", date(2014, 5, 1), "RSSLCU14E01H501A", code="S1234567A")
ADA = Pupil(5256307, "Neri", "Ada", date(2012, 5, 1), "NREADA12E41H501B", code="S1111111C")
MARIO = Guardian(LUCA.tax_code, "mario@example.org", "PADRE", "Rossi", "Mario", "RSSMRA70")


def read(files: list[tuple[str, bytes]], on_file: dict[str, str]) -> RegisterData:
    return read_register((SHEETS.open(n, d) for n, d in files), TODAY, on_file=on_file)


def test_pupils_by_id_or_tax_code_and_guardians_by_tax_code_are_renamed() -> None:
    by_tax = student_reference(None, ADA.tax_code)  # an earlier file without pupil ids
    on_file = {
        "alunno-5256305": "student",
        by_tax: "student",
        guardian_reference(MARIO.tax_code): "guardian",
    }
    data = families_csv([(LUCA, [replace(MARIO, code="G1234567A")]), (ADA, [])])
    result = read([("famiglie.csv", data)], on_file)
    # the families file has no pupil id: Luca is found by his tax code's reference only
    assert result.renames == {by_tax: "S1111111C", guardian_reference(MARIO.tax_code): "G1234567A"}
    ids = read([("alunni.xls", classeviva_xls([LUCA, ADA]))], on_file)
    assert ids.renames == {"alunno-5256305": "S1234567A", by_tax: "S1111111C"}
    assert ids.problems == []


def test_a_code_already_on_file_is_never_taken() -> None:
    on_file = {"alunno-5256305": "student", "S1234567A": "student"}
    result = read([("alunni.xls", classeviva_xls([LUCA]))], on_file)
    assert result.renames == {}
    (problem,) = result.problems
    assert (problem.code, problem.line, problem.username) == ("username_taken", 3, "S1234567A")
    assert "alunno-5256305 not renamed" in problem.detail


def test_only_the_same_role_and_a_reference_the_files_do_not_keep_are_renamed() -> None:
    guardian_named_so = {"alunno-5256305": "guardian"}
    assert read([("a.xls", classeviva_xls([LUCA]))], guardian_named_so).renames == {}
    without_code = replace(ADA, code="")  # the same reference, still in the files
    both = read([("a.xls", classeviva_xls([LUCA, without_code]))], {"alunno-5256307": "student"})
    assert both.renames == {}
    assert {r.username for r in both.records} == {"S1234567A", "alunno-5256307"}
