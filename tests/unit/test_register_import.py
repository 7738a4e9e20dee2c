"""Reading the register's exports: the file kinds, header aliases, the join, the problems."""

from __future__ import annotations

import io
from datetime import date

import pytest
import xlrd

from credmail.adapters.spreadsheets import SpreadsheetFiles
from credmail.core.values import Role
from credmail.service.directory_csv import DirectoryError, DirectoryRecord
from credmail.service.register_columns import header_key, mapping_toml, read_mapping
from credmail.service.register_import import RegisterData, read_register
from credmail.service.register_rows import is_pec, parse_date
from tests.support.register_files import (
    Guardian,
    Pupil,
    classeviva_xls,
    families_csv,
    guardians_xlsx,
    students_csv_cp1252,
)

TODAY = date(2026, 9, 1)
SHEETS = SpreadsheetFiles()

LUCA = Pupil(5256305, "Rossi", "Luca", date(2012, 5, 1), "RSSLCU12E01H501A", year=1)
NICOLO = Pupil(6386842, "Bianchi", "Nicolò", date(2013, 1, 1), "BNCNCL13A01H501B")
SARA = Pupil(386843, "Verdi", "Sara", date(2013, 2, 1), "VRDSRA13B41H501C")
MARIO = Guardian(
    "RSSLCU12E01H501A", "mario.rossi@example.org", "PADRE", "ROSSI", "MARIO", "RSSMRA70A01H501X"
)
ANNA = Guardian("RSSLCU12E01H501A", "anna.neri@example.org", "MADRE", "NERI", "ANNA")
PAOLO = Guardian("BNCNCL13A01H501B", "famiglia.bianchi@example.org", "PADRE", "Bianchi", "Paolo")
ELSA = Guardian("VRDSRA13B41H501C", "elsa.verdi@example.org", "MADRE", "VERDI", "ELSA")


def read(*files: tuple[str, bytes], on_file: tuple[str, ...] = ()) -> RegisterData:
    roles = dict.fromkeys(on_file, Role.STUDENT.value)
    return read_register((SHEETS.open(n, d) for n, d in files), TODAY, on_file=roles)


def by_name(data: RegisterData) -> dict[str, DirectoryRecord]:
    return {f"{r.first_name} {r.last_name}": r for r in data.records}


def codes(data: RegisterData) -> list[tuple[str, int | None, str]]:
    return [(p.file, p.line, p.code) for p in data.problems]


def test_classeviva_xls_with_its_ole_quirk_reads_every_cell_as_text() -> None:
    data = classeviva_xls([LUCA, NICOLO])
    with pytest.raises(xlrd.compdoc.CompDocError, match="Workbook corruption"):
        xlrd.open_workbook(file_contents=data, logfile=io.StringIO())
    sheet = SHEETS.open("RMII0063_AC_2025-26.xls", data)
    rows = list(sheet.rows)
    assert sheet.description == "Excel 97-2003 (.xls), sheet 'Alunni'"
    assert rows[0][0] == 1 and rows[0][1][0] == "Elenco alunni - RMII0063 - a.s. 2025/26"
    line, cells = rows[2]
    assert line == 3
    assert cells[:5] == ["5256305", "ROSSI", "LUCA", "M", "01/05/2012"]  # no 5256305.0
    assert cells[9] == "132"  # a CAP stored as a number stays text (the file lost the zeros)


def test_student_export_header_below_a_title_row_and_unneeded_columns_unread() -> None:
    result = read(("alunni.xls", classeviva_xls([LUCA, NICOLO])))
    (info,) = result.files
    assert (info.layout, info.header_line, info.rows) == ("classeviva", 2, 2)
    assert {"Descr Cittadinanza", "Indirizzo Residenza", "Telefono", "Poszione"} <= set(
        info.ignored_columns
    )
    luca = by_name(result)["Luca Rossi"]
    assert (luca.username, luca.role, luca.birth_date) == (
        "alunno-5256305",
        Role.STUDENT,
        LUCA.born,
    )
    assert (luca.class_name, luca.new_student, luca.active) == ("1B", True, True)
    assert by_name(result)["Nicolò Bianchi"].new_student is False


def test_the_registers_sex_field_is_kept_for_the_words_of_the_replies() -> None:
    giulia = Pupil(5256307, "Ferri", "Sofia", date(2013, 3, 1), "FRRSFO13C41H501E", sex="F")
    unknown = Pupil(5256308, "Neri", "Alex", date(2013, 4, 1), "NRELXA13D01H501F", sex="X")
    result = by_name(read(("a.xls", classeviva_xls([LUCA, giulia, unknown]))))
    assert [result[n].sex for n in ("Luca Rossi", "Sofia Ferri", "Alex Neri")] == ["M", "F", None]


def test_personal_data_not_needed_is_not_kept() -> None:
    result = read(("a.xls", classeviva_xls([LUCA])), ("g.xlsx", guardians_xlsx([MARIO])))
    kept = repr(result.records)
    for secret in ("RSSLCU12E01H501A", "RSSMRA70A01H501X", "3331234567", "VIA MATT", "ITALIANA"):
        assert secret not in kept


def test_windows_1252_semicolon_csv_keeps_leading_zeros_and_accents() -> None:
    sheet = SHEETS.open("alunni.csv", students_csv_cp1252([SARA, NICOLO]))
    assert sheet.description == "CSV, fields separated by semicolon (';'), text in Windows-1252"
    result = read(("alunni.csv", students_csv_cp1252([SARA, NICOLO])))
    assert set(by_name(result)) == {"Sara Verdi", "Nicolò Bianchi"}
    rows = list(SHEETS.open("alunni.csv", students_csv_cp1252([SARA])).rows)
    assert rows[1][1][0] == "0386843"  # the pupil id as typed, zero kept
    assert by_name(result)["Sara Verdi"].username == "alunno-386843"  # same key as the .xls


def test_headers_match_without_case_accents_or_punctuation() -> None:
    assert header_key("CODICE FISCALE ALUNNO *") == header_key("codice fiscale alunno")
    assert header_key("Data di nascita") == "datadinascita"
    assert header_key("Città") == header_key("CITTA")
    text = (
        "ID ALUNNO;COGNOME;NOME;DATA DI NASCITA;CODICE FISCALE\r\n1234567;Neri;Zoè;01/01/2012;X\r\n"
    )
    result = read(("x.csv", text.encode("cp1252")))
    assert by_name(result)["Zoè Neri"].birth_date == date(2012, 1, 1)


def test_guardian_sheet_joins_on_the_pupils_tax_code() -> None:
    result = read(
        ("alunni.xls", classeviva_xls([LUCA, NICOLO])),
        ("tutori.xlsx", guardians_xlsx([MARIO, ANNA, PAOLO])),
    )
    records = by_name(result)
    assert records["Mario Rossi"].students == ("alunno-5256305",)
    assert records["Mario Rossi"].emails == ("mario.rossi@example.org",)
    assert records["Anna Neri"].students == ("alunno-5256305",)
    assert records["Paolo Bianchi"].students == ("alunno-6386842",)
    assert records["Mario Rossi"].username.startswith("tutore-cf-")
    assert result.problems == []


def test_a_guardian_with_two_children_is_one_guardian() -> None:
    sibling = Pupil(5256306, "Rossi", "Marta", date(2014, 5, 1), "RSSMRT14E41H501D")
    second = Guardian(sibling.tax_code, MARIO.email, "PADRE", "Rossi", "Mario", MARIO.tax_code)
    result = read(
        ("a.xls", classeviva_xls([LUCA, sibling])), ("g.xlsx", guardians_xlsx([MARIO, second]))
    )
    guardians = [r for r in result.records if r.role is Role.GUARDIAN]
    assert len(guardians) == 1
    assert guardians[0].students == ("alunno-5256305", "alunno-5256306")
    assert "shared_by_families" not in {p.code for p in result.problems}


def test_guardian_sheet_alone_joins_pupils_already_on_file() -> None:
    result = read(("g.xlsx", guardians_xlsx([ELSA])), on_file=("alunno-cf-x",))
    assert codes(result) == [("g.xlsx", 2, "unknown_pupil")]
    from credmail.service.register_import import _derived

    on_file = (_derived("cf:" + ELSA.pupil_tax_code),)
    result = read(("students.csv", students_csv_cp1252([])), ("g.xlsx", guardians_xlsx([ELSA])))
    result = read(("g.xlsx", guardians_xlsx([ELSA])), on_file=on_file)
    assert by_name(result)["Elsa Verdi"].students == on_file


def test_per_pupil_genitore_columns() -> None:
    data = families_csv([(LUCA, [MARIO, ANNA]), (NICOLO, [PAOLO])])
    result = read(("famiglie.csv", data))
    assert result.files[0].layout == "families"
    records = by_name(result)
    assert records["Luca Rossi"].role is Role.STUDENT
    assert records["Luca Rossi"].username.startswith("alunno-cf-")  # no pupil id in this file
    assert records["Anna Neri"].students == (records["Luca Rossi"].username,)
    assert records["Paolo Bianchi"].students == (records["Nicolò Bianchi"].username,)


def test_login_codes_become_usernames() -> None:
    text = (
        "Codice utente;Cognome;Nome;Data nascita;genitore1Cognome;genitore1Nome;"
        "genitore1Username;genitore1Email\r\n"
        "S1234567A;Rossi;Luca;01/05/2012;Rossi;Mario;G7654321B;mario.rossi@example.org\r\n"
        "s7654321;Neri;Ada;01/05/2012;Neri;Eva;Q1;eva@example.org\r\n"
    )
    result = read(("codici.csv", text.encode()))
    records = by_name(result)
    assert records["Luca Rossi"].username == "S1234567A"
    assert records["Mario Rossi"].username == "G7654321B"
    assert records["Mario Rossi"].students == ("S1234567A",)
    assert [(p.line, p.code) for p in result.problems] == [(3, "login_code"), (3, "login_code")]


def test_left_pupils_are_inactive_from_status_or_end_date() -> None:
    withdrawn = Pupil(
        1000001, "Gallo", "Ugo", date(2012, 1, 1), "GLLGUO12A01H501E", status="Ritirato"
    )
    moved = Pupil(1000002, "Galli", "Ivo", date(2012, 1, 1), "GLLVIO12A01H501F", end="15/03/2026")
    later = Pupil(1000003, "Galle", "Eva", date(2012, 1, 1), "GLLEVA12A41H501G", end="30/06/2027")
    records = by_name(read(("a.xls", classeviva_xls([withdrawn, moved, later]))))
    assert records["Ugo Gallo"].active is False
    assert records["Ivo Galli"].active is False
    assert records["Eva Galle"].active is True


def test_every_problem_with_its_line() -> None:
    bad_date = Pupil(2000001, "Marini", "Leo", "31/02/2013", "MRNLEO13B31H501H")
    future = Pupil(2000002, "Conti", "Ada", date(2030, 1, 1), "CNTADA30A41H501I")
    twin = Pupil(2000003, "Rossi", "Luca", date(2012, 5, 1), LUCA.tax_code)  # same tax code
    orphan = Pupil(2000004, "Sala", "Rino", date(2012, 5, 1), "SLARNI12E01H501L")
    pupils = [LUCA, NICOLO, SARA, bad_date, future, twin, orphan]
    guardians = [
        MARIO,
        Guardian(LUCA.tax_code, "Mario.Rossi@example.org", "MADRE", "Neri", "Anna"),  # shared
        Guardian(NICOLO.tax_code, "", "PADRE", "Bianchi", "Paolo"),  # missing
        Guardian(NICOLO.tax_code, "bianchi(at)example.org", "MADRE", "Bianchi", "Lia"),
        Guardian(SARA.tax_code, "verdi@pec.it", "MADRE", "Verdi", "Elsa"),
        Guardian(
            bad_date.tax_code,
            "mario.rossi@example.org",
            "ZIO",
            "Rossi",
            "Mario",
            "RSSMRA70A01H501X",
        ),
        Guardian(future.tax_code, "mario.rossi@example.org", "PADRE", "Conti", "Bruno"),
        Guardian(future.tax_code, "conti@example.org", "MADRE", "Conti", "Ada", "RSSMRA70A01H501X"),
        Guardian("NOBODY00A00H501Z", "x@example.org", "MADRE", "X", "Y"),
    ]
    result = read(("a.xls", classeviva_xls(pupils)), ("g.xlsx", guardians_xlsx(guardians)))
    found = codes(result)
    assert ("a.xls", 6, "impossible_date") in found
    assert ("a.xls", 7, "impossible_date") in found
    assert ("a.xls", 8, "duplicate_tax_code") in found
    assert ("a.xls", 5, "no_guardian_address") not in found  # Sara has a (PEC) address
    assert ("a.xls", 9, "no_guardian_address") in found  # Rino: no guardian at all
    assert ("a.xls", 4, "no_guardian_address") in found  # Nicolò: no usable address
    assert ("g.xlsx", 2, "shared_by_parents") in found
    assert ("g.xlsx", 4, "missing_address") in found
    assert ("g.xlsx", 5, "malformed_address") in found
    assert ("g.xlsx", 6, "pec_address") in found
    assert ("g.xlsx", 8, "duplicate_tax_code") not in found  # same guardian, same name
    assert ("g.xlsx", 9, "duplicate_tax_code") in found
    assert ("g.xlsx", 10, "unknown_pupil") in found
    shared = [p for p in result.problems if p.code == "shared_by_families"]
    assert len(shared) == 1 and "mario.rossi@example.org" in shared[0].detail
    lines = [(p.file, p.line) for p in result.problems]
    assert lines == sorted(lines, key=lambda fl: (fl[0], fl[1] or 0))


def test_an_unknown_layout_asks_for_a_mapping_and_the_mapping_reads_it() -> None:
    text = "Alunno cognome;Alunno nome;Matricola;Posta famiglia\r\nRossi;Luca;77;f@example.org\r\n"
    with pytest.raises(DirectoryError, match="mapping init"):
        read(("strano.csv", text.encode()))
    # `mapping init` writes every header; the secretariat fills in the fields
    template = mapping_toml(SHEETS.open("strano.csv", text.encode()))
    assert '"Alunno cognome" = ""' in template
    edited = (
        template.replace('"Alunno cognome" = ""', '"Alunno cognome" = "last_name"')
        .replace('"Alunno nome" = ""', '"Alunno nome" = "first_name"')
        .replace('"Matricola" = ""', '"Matricola" = "pupil_id"')
        .replace('"Posta famiglia" = ""', '"Posta famiglia" = "email"')
    )
    mapping = read_mapping("strano", edited.encode())
    result = read_register([SHEETS.open("strano.csv", text.encode())], TODAY, mapping=mapping)
    (luca,) = result.records
    assert (luca.username, luca.emails) == ("alunno-77", ("f@example.org",))


def test_a_bad_mapping_names_the_column() -> None:
    with pytest.raises(DirectoryError, match="'Cognome': unknown field 'surname'"):
        read_mapping("m", b'layout = "classeviva"\n[columns]\nCognome = "surname"\n')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01/05/2012", date(2012, 5, 1)),
        ("2012-05-01", date(2012, 5, 1)),
        ("01-05-2012", date(2012, 5, 1)),
        ("01/05/12", date(2012, 5, 1)),
        ("41030", date(2012, 5, 1)),  # an Excel serial date
        ("31/02/2012", None),
        ("ieri", None),
        ("4²030", None),  # digits to str.isdigit(), not to int()
        ("9" * 5000, None),  # past int()'s limit on digits
    ],
)
def test_dates(text: str, expected: date | None) -> None:
    assert parse_date(text) == expected


def test_pec_addresses() -> None:
    assert is_pec("a@pec.it") and is_pec("a@legalmail.it") and is_pec("a@pec.comune.roma.it")
    assert not is_pec("pec@example.org") and not is_pec("a@specchio.it")


def test_progress_is_reported_while_reading() -> None:
    pupils = [
        Pupil(3000000 + n, f"Cognome{n}", "Nome", date(2012, 1, 1), f"TAX{n:013d}")
        for n in range(450)
    ]
    calls: list[tuple[int, int | None]] = []
    sheets = [SHEETS.open("a.xls", classeviva_xls(pupils))]
    read_register(sheets, TODAY, progress=lambda done, total: calls.append((done, total)))
    assert calls[:2] == [(200, None), (400, None)]
    assert calls[-1][0] == calls[-1][1] and calls[-1][0] >= 450


def test_rows_that_cannot_be_keyed_or_named_are_skipped_and_said() -> None:
    text = (
        "Id Alunno;Cognome;Nome;Data Nascita;Codice Fiscale\r\n"
        "1000001;Rossi;Luca;01/05/2012;\r\n"
        "1000001;Rossi;Luca;01/05/2012;\r\n"  # enrolled twice
        ";Neri;Ada;01/05/2012;\r\n"  # no key at all
        "1000003;;Eva;01/05/2012;\r\n"  # no last name
    )
    result = read(("a.csv", text.encode()))
    assert [r.username for r in result.records] == ["alunno-1000001"]
    assert codes(result) == [
        ("a.csv", 3, "duplicate_pupil"),
        ("a.csv", 4, "missing_key"),
        ("a.csv", 5, "missing_name"),
    ]
    sheet = (
        "CODICE FISCALE ALUNNO;EMAIL TUTORE;COGNOME TUTORE;NOME TUTORE\r\n;x@example.org;A;B\r\n"
    )
    assert codes(read(("g.csv", sheet.encode()))) == [("g.csv", 2, "missing_key")]
