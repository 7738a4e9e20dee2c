"""0005: people's language, new_student and active (a batch migration of people on
SQLite: the table is made again, with its emails and guardianships pointing at it)."""

from tests.integration.upgrade_fixtures import Rows, add_column

REVISION = "0005"


def migrated(rows: Rows) -> None:
    add_column(rows, "people", language=None, new_student=False, active=True)


ROWS = {
    "people": [
        {
            "id": 4,
            "username": "S0002",
            "role": "student",
            "first_name": "Amira",
            "last_name": "Haddad",
            "birth_date": "2013-01-02",
            "class_name": "1B",
            "language": "ar",
            "new_student": True,
            "active": False,
        },
    ],
    "guardianships": [{"guardian_id": 1, "student_id": 4}],
}
