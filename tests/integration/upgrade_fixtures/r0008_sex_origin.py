"""0008: people's sex (for the replies' Italian agreement), a link's origin (a campaign's
first-access links are marked as such)."""

from tests.integration.upgrade_fixtures import Rows, add_column

REVISION = "0008_sex_origin"


def migrated(rows: Rows) -> None:
    add_column(rows, "people", sex=None)
    for row in rows.get("link_tokens", []):
        row["origin"] = "campaign" if row["purpose"] == "student_first_access" else None


ROWS = {
    "people": [
        {
            "id": 5,
            "username": "G0002",
            "role": "guardian",
            "first_name": "Sara",
            "last_name": "Bianchi",
            "birth_date": None,
            "class_name": None,
            "language": None,
            "new_student": False,
            "active": True,
            "sex": "F",
        },
    ],
    "person_emails": [
        {
            "id": 4,
            "person_id": 5,
            "position": 0,
            "address": "sara@example.org",
            "address_key": "sara@example.org",
        },
    ],
}
