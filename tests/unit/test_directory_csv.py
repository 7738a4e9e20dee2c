"""Directory CSV validation: every bad row reported with its line number."""

from __future__ import annotations

from datetime import date

import pytest

from credmail.core.values import Role
from credmail.service.directory_csv import (
    DirectoryError,
    describe_input,
    detect_delimiter,
    read_directory,
)

HEADER = "role,username,first_name,last_name,birth_date,emails,students,class\n"


def problems(body: str, header: str = HEADER) -> list[str]:
    with pytest.raises(DirectoryError) as caught:
        read_directory((header + body).encode())
    return caught.value.problems


def test_valid_file() -> None:
    records = read_directory(
        (
            HEADER
            + "guardian,G1,Mario,Rossi,,a@example.org; b@example.org,S1,\n"
            + "student,S1,Luca,Rossi,2012-05-01,,,2B\n"
        ).encode()
    )
    assert [r.role for r in records] == [Role.GUARDIAN, Role.STUDENT]
    assert records[0].emails == ("a@example.org", "b@example.org")
    assert records[0].students == ("S1",)
    assert records[1].class_name == "2B"


def test_every_bad_row_is_reported_with_its_line() -> None:
    found = problems(
        "guardian,G1,Mario,Rossi,,a@example.org,S1,\n"  # line 2: fine
        "student,S1,Luca,Rossi,,,,\n"  # line 3: no birth date
        "teacher,T1,,Bianchi,,t@example.org,,\n"  # line 4: no first name
        "pupil,P1,A,B,,,,\n"  # line 5: bad role
        "student,S2,Anna,Verdi,01/02/2012,,,\n"  # line 6: bad date
        "staff,A1,Franco,Gallo,,not-an-address,,\n"  # line 7: bad address
        "teacher,T2,Gio,Esposito,,,S1,\n"  # line 8: students on a teacher
        "guardian,G1,Mario,Rossi,,,,\n"  # line 9: repeated username
    )
    assert [p.split(":")[0] for p in found] == [f"line {n}" for n in range(3, 10)]
    assert "birth_date is required for students" in found[0]
    assert "first_name is empty" in found[1]
    assert "role must be one of" in found[2]
    assert "is not YYYY-MM-DD" in found[3]
    assert "'not-an-address' is not an address" in found[4]
    assert "students is only for guardians" in found[5]
    assert "repeats line 2" in found[6]


def test_guardian_linked_to_a_non_student() -> None:
    found = problems("guardian,G1,M,R,,,T1,\nteacher,T1,G,E,,,,\n")
    assert found == ["line 2: T1 is not a student"]


def test_missing_and_unknown_columns() -> None:
    found = problems("", header="role,username,first_name,last_name,emails,nickname\n")
    assert found == [
        "line 1: missing column birth_date",
        "line 1: missing column students",
        "line 1: unknown column nickname",
    ]


def test_an_italian_excel_export_in_windows_1252_is_read_and_said_so() -> None:
    header = HEADER.replace(",", ";")
    data = header.encode() + "teacher;T1;José;Niccolò;;;;4ª B €\n".encode("cp1252")
    (record,) = read_directory(data)
    assert (record.first_name, record.last_name, record.class_name) == ("José", "Niccolò", "4ª B €")
    assert describe_input(data) == "fields separated by semicolon (';'), text in Windows-1252"
    assert describe_input(data.decode("cp1252").encode()).endswith("text in UTF-8")


def test_bytes_neither_utf8_nor_windows_1252() -> None:
    with pytest.raises(DirectoryError, match="neither UTF-8 nor Windows-1252"):
        read_directory(HEADER.encode() + b"teacher,T1,Jos\x81\xe9,E,,,,\n")


@pytest.mark.parametrize("data", [b"", b"\n", b"\xef\xbb\xbf", b" \r\n\r\n"])
def test_an_empty_file_is_one_problem(data: bytes) -> None:
    with pytest.raises(DirectoryError) as caught:
        read_directory(data)
    assert caught.value.problems == ["the file is empty"]
    with pytest.raises(DirectoryError, match="the file is empty"):
        describe_input(data)


@pytest.mark.parametrize(
    "emails",
    [
        "a@x.org, b@y.org",
        "a@x.org b@y.org",
        "Name <a@x.org>",
        "x@y.org>",
        "<x@y.org>",
        "a@localhost",
        "a@-x.org",
        "a@x_y.org",
        "a@x..org",
        "a@[192.0.2.1]",
        "a@1.2.3.4",
        "a.@x.org",
        "a@@x.org",
        "àlfa@x.org",
    ],
)
def test_emails_must_be_one_plain_address_each(emails: str) -> None:
    (found,) = problems(f'teacher,T1,Gio,Esposito,,"{emails}",,\n')
    assert found.startswith("line 2: emails:") and "is not an address" in found


def test_an_address_with_a_newline_names_the_line_the_row_starts_on() -> None:
    found = problems('teacher,T0,A,B,,,,\nteacher,T1,Gio,Esposito,,"a@x.org\nb@y.org",,\n')
    assert len(found) == 1 and found[0].startswith("line 3: emails: 'a@x.org\\nb@y.org'")


def test_accepted_addresses() -> None:
    emails = "o'neil+scuola@example.org; Mario.Rossi@Esempio.IT; a@città.it; b@xn--d1acj3b.com."
    (record,) = read_directory((HEADER + f"teacher,T1,A,B,,{emails},,\n").encode())
    assert len(record.emails) == 4


def test_birth_date_in_the_future() -> None:
    body = "student,S1,Luca,Rossi,2031-01-01,,,\nstudent,S2,Anna,Verdi,2020-01-01,,,\n"
    with pytest.raises(DirectoryError) as caught:
        read_directory((HEADER + body).encode(), today=date(2026, 11, 28))
    assert caught.value.problems == ["line 2: birth_date 2031-01-01 is in the future"]


def test_semicolon_separated_export_from_excel() -> None:
    text = (
        "role;username;first_name;last_name;birth_date;emails;students;class\r\n"
        'guardian;G1;Mario;Rossi;;"a@example.org;b@example.org";S1;\r\n'
        "student;S1;Luca;Rossi;2012-05-01;;;2B\r\n"
    )
    assert detect_delimiter(text) == ";"
    guardian, student = read_directory(text.encode("utf-8-sig"))
    assert guardian.emails == ("a@example.org", "b@example.org")
    assert guardian.students == ("S1",) and student.class_name == "2B"
    assert detect_delimiter(HEADER) == ","
