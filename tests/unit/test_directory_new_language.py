"""The optional `new` and `language` columns of the directory CSV."""

from datetime import date

import pytest

from credmail.service.directory_csv import DirectoryError, read_directory

HEADER = "role,username,first_name,last_name,birth_date,emails,students,new,language\n"
TODAY = date(2026, 9, 1)


def test_new_and_language_are_read() -> None:
    data = (
        HEADER
        + "student,S1,Ana,Pop,2014-02-01,,,sì,\n"
        + "guardian,G1,Ion,Pop,,ion@example.org,S1,,RO\n"
        + "student,S2,Eva,Neri,2013-01-01,,,,it\n"
    ).encode()
    s1, g1, s2 = read_directory(data, today=TODAY)
    assert (s1.new_student, s1.language) == (True, None)
    assert (g1.new_student, g1.language) == (False, "ro")
    assert (s2.new_student, s2.language) == (False, None)  # Italian is the default, not stored


def test_bad_values_name_their_line() -> None:
    data = (
        HEADER
        + "student,S1,Ana,Pop,2014-02-01,,,forse,\n"
        + "guardian,G1,Ion,Pop,,ion@example.org,S1,sì,\n"
        + "guardian,G2,Ada,Pop,,ada@example.org,S1,,romanian\n"
    ).encode()
    with pytest.raises(DirectoryError) as raised:
        read_directory(data, today=TODAY)
    text = "\n".join(raised.value.problems)
    assert "line 2" in text and "new must be" in text
    assert "line 3" in text and "new is only for students" in text
    assert "line 4" in text and "two-letter" in text
