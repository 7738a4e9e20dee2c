"""Directory CSV validation: every bad row reported with its line number."""

from __future__ import annotations

import pytest

from credmail.core.values import Role
from credmail.service.directory_csv import DirectoryError, read_directory

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


def test_not_utf8() -> None:
    with pytest.raises(DirectoryError, match="not UTF-8"):
        read_directory(HEADER.encode() + b"teacher,T1,Jos\xe9,E,,,,\n")
