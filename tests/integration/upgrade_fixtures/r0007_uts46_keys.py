"""0007: every address key in UTS 46 form (IDNA 2008): `ß` stays, as its A-label."""

from tests.integration.upgrade_fixtures import Rows

REVISION = "0007_uts46_keys"
# the key each address written in the rows above has from 0007 on
KEYS = {
    "Anna.Rossi@example.org": "anna.rossi@example.org",
    "anna.rossi@example.org": "anna.rossi@example.org",
    "docente@straße.de": "docente@xn--strae-oqa.de",
    "jweiss@example.org": "jweiss@example.org",
    "ignoto@example.org": "ignoto@example.org",
}
KEYED = (
    ("person_emails", "address_key", "address"),
    ("link_tokens", "address_key", "address"),
    ("register_tasks", "address_key", "address"),
    ("outbox", "recipient_key", "recipient"),
    ("campaign_recipients", "address_key", "address"),
)


def migrated(rows: Rows) -> None:
    for table, key, source in KEYED:
        for row in rows.get(table, []):
            if row[source] is not None:
                row[key] = KEYS[row[source]]


ROWS: Rows = {}
