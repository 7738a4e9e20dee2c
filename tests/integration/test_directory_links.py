"""A guardian's students checked against the file and the directory on file: every problem
in one pass, and a person who is not a student named as such (issue 10.8)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from credmail.adapters.db.directory_import import import_records, roles_on_file
from credmail.adapters.db.engine import make_engine, upgrade
from credmail.samples import directory_csv
from credmail.service.directory_csv import DirectoryError, read_directory

pytestmark = pytest.mark.integration

HEADER = b"role,username,first_name,last_name,birth_date,emails,students,class\n"
BAD = HEADER + (
    b"student,S9,Senza,Data,,,,\nguardian,G9,Tutore,Nuovo,,tutore@example.org,NOPE;T3001;S2001,\n"
)


def test_every_problem_in_one_pass_and_a_teacher_is_not_a_student(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        with Session(engine) as session:
            import_records(session, read_directory(directory_csv(date.today())), prune=False)
            session.commit()
            with pytest.raises(DirectoryError) as caught:
                read_directory(BAD, on_file=roles_on_file(session))
            assert caught.value.problems == [
                "line 2: birth_date is required for students",
                "line 3: unknown student NOPE",
                "line 3: T3001 is not a student",
            ]
            # the import itself, with the file alone validated, says the same
            good = BAD.replace(b"student,S9,Senza,Data,,,,\n", b"")
            with pytest.raises(DirectoryError) as caught:
                import_records(session, read_directory(good), prune=False)
            assert caught.value.problems == [
                "line 2: unknown student NOPE",
                "line 2: T3001 is not a student",
            ]
    finally:
        engine.dispose()


def test_a_file_without_a_language_keeps_the_one_the_secretariat_set(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    header = "role,username,first_name,last_name,birth_date,emails,students"
    with_language = f"{header},language\nguardian,G1,Ion,Pop,,ion@example.org,,ro\n"
    without = f"{header}\nguardian,G1,Ion,Pop,,ion@example.org,\n"
    english = f"{header},language\nguardian,G1,Ion,Pop,,ion@example.org,,en\n"
    found = []
    for data in (with_language, without, english):
        with Session(engine) as session:
            import_records(session, read_directory(data.encode()), prune=False)
            session.commit()
            found.append(session.scalar(text("SELECT language FROM people")))
    engine.dispose()
    assert found == ["ro", "ro", "en"]  # only a file that names a language changes it


def test_the_sex_column_and_two_spellings_of_one_address_import_again_and_again(
    db_url: str,
) -> None:
    """`sex` is kept until a file names another; an address listed twice in two
    spellings (a Unicode and an ASCII domain, or two cases) is one address, every time."""
    engine = make_engine(db_url)
    upgrade(engine)
    header = "role,username,first_name,last_name,birth_date,emails,students"
    twice = "anna@straße.de;ANNA@xn--strae-oqa.de"
    with_sex = f"{header},sex\nteacher,T1,Anna,Ferri,,{twice},,F\n"
    without = f"{header}\nteacher,T1,Anna,Ferri,,{twice},\n"
    found = []
    for data in (with_sex, without, with_sex):
        with Session(engine) as session:
            import_records(session, read_directory(data.encode()), prune=False)
            session.commit()
            found.append(session.execute(text("SELECT sex FROM people")).scalar())
            addresses = session.execute(text("SELECT address FROM person_emails")).all()
            assert [a for (a,) in addresses] == ["anna@straße.de"]
    engine.dispose()
    assert found == ["F", "F", "F"]
    with pytest.raises(DirectoryError, match="sex must be M or F"):
        read_directory(f"{header},sex\nteacher,T2,Bo,Ru,,b@example.org,,X\n".encode())
