"""0012: a review item's deferral (old items: never deferred) and the addresses the
secretariat added to a person (a new table)."""

from tests.integration.upgrade_fixtures import Rows, add_column

REVISION = "0012_defer_remember"


def migrated(rows: Rows) -> None:
    add_column(rows, "review_items", deferred_until=None)


ROWS = {
    "remembered_addresses": [
        {
            "id": 1,
            "person_id": 1,
            "address": "Mario.Rossi@Lavoro.example",
            "address_key": "mario.rossi@lavoro.example",
            "added_by": "olga (console)",
            "added_at": "2026-12-08 10:00:00",
            "review_id": 1,
        },
    ],
}
